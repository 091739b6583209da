/**
 * The one error type IPAM throws for bad input or a refused request. `code` lets the API map it to
 * a status without parsing the message; the message is what a person reads (it names the value
 * and, where there is one, the fix).
 */
export type IpamErrorCode =
  /** malformed or contradictory input (bad CIDR, gateway outside its subnet...) */
  | 'invalid'
  /** overlaps another network or a host route */
  | 'overlap'
  /** the requested address is held by someone else */
  | 'in-use'
  /** no free subnet in the pools, or no free address in the subnet */
  | 'exhausted'
  /** gave up after too many lost compare-and-swap races */
  | 'contention';

export class IpamError extends Error {
  constructor(
    message: string,
    readonly code: IpamErrorCode,
  ) {
    super(message);
    this.name = 'IpamError';
  }
}
