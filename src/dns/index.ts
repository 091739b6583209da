/**
 * The embedded DNS server: names of containers on user-defined networks, scoped like Docker's,
 * and forwarding of everything else. See README.md in this folder.
 */
export {
  DNS_TTL,
  FORWARD,
  NODATA,
  NXDOMAIN,
  NameTable,
  reverseName,
  rotated,
  type Asker,
  type DnsContainer,
  type DnsEndpoint,
  type DnsExtraName,
  type DnsNetwork,
  type DnsSnapshot,
  type DnsSrv,
  type LocalAnswer,
  type LocalRecord,
  type SrvRecordData,
} from './records.js';
export { DnsServer, type DnsLogger, type DnsServerOptions, type DnsStats, type Upstream } from './server.js';
export { QCLASS, QTYPE, RCODE } from './wire.js';
