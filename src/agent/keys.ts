/** Where the agent keeps desired state in the store. */
export const K = {
  networks: '/weft/networks/',
  network: (id: string) => `/weft/networks/${id}`,
  networkName: (name: string) => `/weft/names/networks/${name}`,
  containers: '/weft/containers/',
  container: (id: string) => `/weft/containers/${id}`,
  containerName: (name: string) => `/weft/names/containers/${name}`,
  ports: '/weft/ports/',
  /** a published host port claim: /weft/ports/<proto>/<port>/<hostIp> -> container id */
  port: (proto: string, port: number, hostIp: string) => `/weft/ports/${proto}/${port}/${hostIp}`,
};
