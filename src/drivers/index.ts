import type { Network } from '../model/types.js';
import type { Driver } from './types.js';
import { bridgeDriver, nullDriver } from './bridge/index.js';

const hostDriver = nullDriver('host');
const noneDriver = nullDriver('none');

export function driverFor(net: Network): Driver {
  switch (net.driver) {
    case 'bridge':
      return bridgeDriver;
    case 'host':
      return hostDriver;
    case 'none':
      return noneDriver;
  }
}
