/** Who is making a request: the owner of the files it touches, and whether they administer. */
export interface Principal {
  ownerId: string;
  role: 'user' | 'admin';
}

/** The single owner of a server running with AUTH_MODE=none. */
export const LOCAL_PRINCIPAL: Principal = { ownerId: 'local', role: 'admin' };
