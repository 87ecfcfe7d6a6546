/**
 * How a problem names what it is about: an environment variable in quotes (`"BFF_ROUTES"`),
 * anything else as given (`frontends[1] (admin).routes`).
 */
export function settingLabel(name: string): string {
  return /^[A-Z][A-Z0-9_]*$/.test(name) ? `"${name}"` : name
}
