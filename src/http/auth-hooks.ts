// Route-level authorisation helpers.
import type { FastifyRequest } from 'fastify';
import { AppError } from '../errors.js';

export async function requireAdmin(request: FastifyRequest): Promise<void> {
  if (request.principal?.role !== 'admin') {
    throw new AppError(403, 'ADMIN_ONLY', 'this endpoint is for administrators (a token with role "admin")');
  }
}
