/** Random container names in Docker's style: adjective_surname (network pioneers here). */
const ADJECTIVES = [
  'brave', 'calm', 'clever', 'eager', 'fervent', 'gentle', 'happy', 'jolly', 'keen', 'kind',
  'lucid', 'merry', 'nifty', 'quirky', 'serene', 'sharp', 'stoic', 'swift', 'tender', 'vivid',
  'wise', 'witty', 'zealous', 'bold', 'bright', 'cool', 'dazzling', 'elegant', 'festive', 'frosty',
];
const SURNAMES = [
  'baran', 'cerf', 'kahn', 'postel', 'metcalfe', 'perlman', 'kleinrock', 'davies', 'pouzin',
  'clark', 'jacobson', 'floyd', 'estrin', 'shenker', 'mockapetris', 'hinden', 'deering', 'bellovin',
  'crocker', 'braden', 'mills', 'partridge', 'zhang', 'feinler', 'reynolds', 'tomlinson', 'abramson',
];

export function randomName(withNumber = false): string {
  const a = ADJECTIVES[Math.floor(Math.random() * ADJECTIVES.length)];
  const s = SURNAMES[Math.floor(Math.random() * SURNAMES.length)];
  return withNumber ? `${a}_${s}${Math.floor(Math.random() * 10)}` : `${a}_${s}`;
}
