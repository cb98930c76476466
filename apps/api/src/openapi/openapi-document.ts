import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import type { ParameterObject, ReferenceObject, ResponseObject } from '@nestjs/swagger/dist/interfaces/open-api-spec.interface';
import { ID_PATTERN, KEY_ID_PATTERN } from '@kernelfleet/contracts';
import { API_OPERATIONS, type OperationDoc } from './api-operations';
import { componentSchemas } from './openapi-schemas';

/** Where the document is served: Swagger UI at /docs, the JSON at /docs-json (no API key). */
export const DOCS_PATH = 'docs';

const PROBLEMS: Record<number, string> = {
  400: 'Bad request: malformed JSON or UTF-8, a field, parameter or header of the wrong shape (`errors` names each)',
  401: 'Missing or unknown API key',
  404: 'Unknown or another tenant\'s resource (the same answer for both), or an unknown route',
  405: 'The path exists but not with this method; `Allow` lists the methods it serves',
  409: 'Conflict: the execution already ended, or an Idempotency-Key is still being claimed (Retry-After) or spent',
  413: 'Payload too large: code over MAX_CODE_BYTES or the body over its limit',
  415: 'Unsupported media type: send the body as Content-Type: application/json (UTF-8)',
  422: 'Unprocessable: the Idempotency-Key was used with another request',
  429: 'A tenant quota is full; Retry-After says when to try again; `quota` and `limit` name it',
  503: 'Redis is unreachable; retry shortly (Retry-After)',
};

const HEADERS: Record<number, ResponseObject['headers']> = {
  401: { 'WWW-Authenticate': { description: '`Bearer`', schema: { type: 'string' } } },
  405: { Allow: { description: 'the methods the path serves', schema: { type: 'string' } } },
  409: { 'Retry-After': { description: 'seconds (an Idempotency-Key still being claimed)', schema: { type: 'integer' } } },
  429: { 'Retry-After': { description: 'seconds', schema: { type: 'integer' } } },
  503: { 'Retry-After': { description: 'seconds', schema: { type: 'integer' } } },
};

/** The RFC 9457 answer of `status` as an OpenAPI response. */
export function problemResponse(status: number): ResponseObject {
  return {
    description: PROBLEMS[status] ?? 'Problem',
    ...(HEADERS[status] ? { headers: HEADERS[status] } : {}),
    content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
  };
}

/** Path parameters are ids with a known shape. */
const PATH_PATTERNS: Record<string, { pattern: string; description: string }> = {
  sessionId: { pattern: ID_PATTERN.source, description: 'session id' },
  executionId: { pattern: ID_PATTERN.source, description: 'execution id' },
  ownerId: { pattern: ID_PATTERN.source, description: 'owner id' },
  keyId: { pattern: KEY_ID_PATTERN.source, description: 'stored key id (16 lowercase hex characters)' },
  path: { pattern: '^[^/].{0,1023}$', description: 'a path relative to the session\'s folder, each segment percent-encoded; no `.` or `..` segments' },
};

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

/**
 * Completes the operations Nest's route scan found with `operations` (summary, security,
 * parameters, body, every success and problem answer). A route missing from `operations` keeps
 * what the scan gave plus a generic problem answer, and is reported through `warn`.
 */
export function describeOperations(
  document: OpenAPIObject,
  operations: Record<string, OperationDoc> = API_OPERATIONS,
  warn: (message: string) => void = () => undefined,
): OpenAPIObject {
  for (const [path, item] of Object.entries(document.paths)) {
    for (const method of METHODS) {
      const operation = item[method];
      if (!operation) continue;
      const doc = operations[`${method.toUpperCase()} ${path}`];
      if (!doc) {
        warn(`OpenAPI: ${method.toUpperCase()} ${path} is not described in api-operations.ts`);
        operation.responses = { ...operation.responses, default: { ...problemResponse(500), description: 'Problem' } };
        continue;
      }
      const pathParameters = (operation.parameters ?? [])
        .filter((p): p is ParameterObject => !('$ref' in p) && p.in === 'path')
        .map((p) => {
          const known = PATH_PATTERNS[p.name];
          return { ...p, schema: { type: 'string' as const, ...(known ? { pattern: known.pattern } : {}) }, ...(known ? { description: known.description } : {}) };
        });
      operation.summary = doc.summary;
      if (doc.description) operation.description = doc.description;
      operation.tags = [doc.tag];
      operation.security = doc.auth === 'tenant' ? [{ tenantKey: [] }] : doc.auth === 'admin' ? [{ adminKey: [] }] : [];
      operation.parameters = [...pathParameters, ...(doc.parameters ?? [])] as (ParameterObject | ReferenceObject)[];
      if (doc.body) {
        operation.requestBody = { required: true, content: { 'application/json': { schema: { $ref: `#/components/schemas/${doc.body}` } } } };
      } else if (doc.bytesBody) {
        operation.requestBody = { required: true, description: doc.bytesBody, content: { '*/*': { schema: { type: 'string', format: 'binary' } } } };
      } else {
        delete operation.requestBody;
      }
      operation.responses = {
        ...doc.responses,
        ...Object.fromEntries([...doc.errors].sort((a, b) => a - b).map((status) => [String(status), problemResponse(status)])),
      };
    }
  }
  return document;
}

/** The api's OpenAPI 3 document: Nest's route table, completed from API_OPERATIONS. */
export function createOpenApiDocument(app: INestApplication, warn?: (message: string) => void): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('kernelfleet')
    .setDescription(
      'Runs Python for other programs on a fleet of Jupyter kernels. Errors are RFC 9457 `application/problem+json` ' +
        '(docs/api-errors.md). Tenant routes take `Authorization: Bearer <api key>`; /admin routes the ADMIN_KEY.',
    )
    .setVersion('1')
    .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'a tenant API key (the key decides the tenant)' }, 'tenantKey')
    .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'the operator key ADMIN_KEY' }, 'adminKey')
    .build();
  const document = SwaggerModule.createDocument(app, config);
  document.components = { ...document.components, schemas: { ...document.components?.schemas, ...componentSchemas() } };
  return describeOperations(document, API_OPERATIONS, warn);
}

/** Serves Swagger UI at /docs and the document at /docs-json. */
export function serveOpenApi(app: INestApplication, warn?: (message: string) => void): void {
  const document = createOpenApiDocument(app, warn);
  SwaggerModule.setup(DOCS_PATH, app, document, { jsonDocumentUrl: `${DOCS_PATH}-json`, yamlDocumentUrl: `${DOCS_PATH}-yaml` });
}
