import type { AdmissionRequest } from './admission.js';

const MAX_ACTOR = 256;

/**
 * Who made an admission request, rendered for Events, annotations and
 * messages: the username from the API server's userInfo (which it
 * authenticated; nothing the client sent in the object), with control
 * characters removed and bounded in length. Groups are left out: they are
 * long and the audit log keeps them.
 */
export function actorOf(req: Pick<AdmissionRequest, 'userInfo'>): string {
  const username = req.userInfo?.username ?? '';
  const clean = username
    .replace(/[\u0000-\u001f\u007f]/g, '')
    .trim()
    .slice(0, MAX_ACTOR);
  return clean === '' ? 'unknown user' : clean;
}
