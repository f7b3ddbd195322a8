/** Recovery addresses as results and logs show them: enough to recognise, not enough to use. */
export function maskAddress(kind: 'email' | 'sms', address: string): string {
  if (kind === 'email') {
    const [local = '', domain = ''] = address.split('@');
    return `${local.slice(0, 1)}***@${domain}`;
  }
  const digits = address.replace(/\D/g, '');
  return `${address.startsWith('+') ? '+' : ''}${digits.slice(0, 1)}-***-**${digits.slice(-2)}`;
}
