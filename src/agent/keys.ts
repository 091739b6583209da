/** Where the agent keeps desired state in the store. */
export const K = {
  networks: '/weft/networks/',
  network: (id: string) => `/weft/networks/${id}`,
  networkName: (name: string) => `/weft/names/networks/${name}`,
  containers: '/weft/containers/',
  container: (id: string) => `/weft/containers/${id}`,
  containerName: (name: string) => `/weft/names/containers/${name}`,
  services: '/weft/services/',
  service: (id: string) => `/weft/services/${id}`,
  serviceName: (name: string) => `/weft/names/services/${name}`,
  serviceKeys: '/weft/service-keys/',
  serviceKey: (key: number) => `/weft/service-keys/${key}`,
  ports: '/weft/ports/',
  /** a published host port claim: /weft/ports/<proto>/<port>/<hostIp> -> container id */
  port: (proto: string, port: number, hostIp: string) => `/weft/ports/${proto}/${port}/${hostIp}`,
};
