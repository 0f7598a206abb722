// Requests that never reach a route: what Node's HTTP parser refuses (a head over the size limit,
// malformed syntax, Content-Length together with Transfer-Encoding) and what Fastify's router
// cannot take (a path that is not valid percent-encoding, a segment over maxParamLength). They get
// the same `{"error": {"code", "message"}}` body as every other error, and the message is fixed
// text: nothing of the request (its URL, a header) is ever written back.
import { maxHeaderSize, STATUS_CODES, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';

export interface ClientErrorAnswer {
  status: number;
  code: string;
  message: string;
}

/** The answer to a parser error, by Node's error code. */
export function describeClientError(errorCode: string | undefined): ClientErrorAnswer {
  switch (errorCode) {
    case 'HPE_HEADER_OVERFLOW':
      return { status: 431, code: 'REQUEST_HEADERS_TOO_LARGE', message: `the request line and headers exceed ${maxHeaderSize} bytes` };
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return { status: 413, code: 'CHUNK_EXTENSIONS_TOO_LARGE', message: 'the chunk extensions of the body are too large' };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { status: 408, code: 'REQUEST_TIMEOUT', message: 'the request did not arrive in time' };
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
      return { status: 400, code: 'MALFORMED_REQUEST', message: 'Content-Length together with Transfer-Encoding is refused (ambiguous message length)' };
    case 'HPE_INVALID_CONTENT_LENGTH':
      return { status: 400, code: 'MALFORMED_REQUEST', message: 'Content-Length is not a valid length' };
    case 'HPE_INVALID_TRANSFER_ENCODING':
    case 'HPE_INVALID_CHUNK_SIZE':
      return { status: 400, code: 'MALFORMED_REQUEST', message: 'the body framing (Transfer-Encoding or chunk sizes) is malformed' };
    case 'HPE_INVALID_HEADER_TOKEN':
      return { status: 400, code: 'MALFORMED_REQUEST', message: 'a header name or value holds a character HTTP does not allow' };
    case 'HPE_INVALID_METHOD':
      return { status: 400, code: 'MALFORMED_REQUEST', message: 'the request method is not valid' };
    case 'HPE_INVALID_URL':
      return { status: 400, code: 'MALFORMED_REQUEST', message: 'the request target is not valid' };
    case 'HPE_INVALID_VERSION':
      return { status: 400, code: 'MALFORMED_REQUEST', message: 'the HTTP version is not valid' };
    default:
      return { status: 400, code: 'MALFORMED_REQUEST', message: 'the request is not valid HTTP/1.1' };
  }
}

/** A complete raw HTTP/1.1 response carrying the JSON error; the connection closes after it. */
export function rawErrorResponse({ status, code, message }: ClientErrorAnswer): string {
  const body = JSON.stringify({ error: { code, message } });
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
    'Content-Type: application/json; charset=utf-8\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    'Cache-Control: no-store\r\n' +
    'Connection: close\r\n\r\n' +
    body
  );
}

/** Fastify's `clientErrorHandler` (the server's 'clientError' event). */
export function clientErrorHandler(this: { log: { debug(obj: object, msg: string): void } }, error: Error & { code?: string }, socket: Socket): void {
  // A reset connection has no one left to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  this.log.debug({ code: error.code }, 'refused a request the HTTP parser could not take');
  // Never write into the middle of a response already on its way.
  const inFlight = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (socket.writable && !inFlight?.headersSent) socket.write(rawErrorResponse(describeClientError(error.code)));
  socket.destroy(error);
}

/** Fastify's `frameworkErrors`: routing errors that happen before any route (and its hooks) runs. */
export function frameworkErrorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  let answer: ClientErrorAnswer;
  if (error.code === 'FST_ERR_BAD_URL') {
    answer = { status: 400, code: 'INVALID_URL', message: 'the request path is not valid percent-encoded text' };
  } else if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    answer = { status: 414, code: 'URI_TOO_LONG', message: 'a segment of the request path is too long' };
  } else {
    request.log.error({ err: error }, 'routing failed');
    answer = { status: 500, code: 'INTERNAL_ERROR', message: 'the request could not be routed' };
  }
  void reply
    .status(answer.status)
    .header('X-Request-ID', request.id)
    .header('Content-Type', 'application/json; charset=utf-8')
    .send(JSON.stringify({ error: { code: answer.code, message: answer.message } }));
}
