import type { OpenAPIObject } from '@nestjs/swagger';
import { submitExecutionSchema } from '@kernelfleet/contracts';
import { AppModule } from '../app.module';
import { API_OPERATIONS } from './api-operations';
import { describeOperations, problemResponse } from './openapi-document';
import { componentSchemas, openApiSchemaOf } from './openapi-schemas';
import { controllerRoutes } from './route-table';

describe('OpenAPI document', () => {
  it('describes exactly the routes the controllers serve', () => {
    const routes = controllerRoutes(AppModule);
    expect(routes).toContain('POST /v1/sessions/{sessionId}/executions');
    expect(routes).toContain('GET /metrics');
    expect(Object.keys(API_OPERATIONS).sort()).toEqual(routes);
  });

  it('gives every operation a success answer (2xx, or 3xx for a redirect) and problem answers, 405 included', () => {
    for (const [route, doc] of Object.entries(API_OPERATIONS)) {
      expect({ route, success: Object.keys(doc.responses).some((s) => /^[23]\d\d$/.test(s)) }).toEqual({ route, success: true });
      expect({ route, has405: doc.errors.includes(405) }).toEqual({ route, has405: true });
      if (doc.auth !== 'none') expect({ route, has401: doc.errors.includes(401) }).toEqual({ route, has401: true });
      if (doc.body) expect({ route, bodyErrors: [400, 413, 415].every((s) => doc.errors.includes(s)) }).toEqual({ route, bodyErrors: true });
    }
  });

  it('takes the submit body from the zod contract, with OpenAPI 3.0 bounds', () => {
    const schema = openApiSchemaOf(submitExecutionSchema);
    expect(schema).toMatchObject({ type: 'object', required: ['code'], additionalProperties: false });
    expect(schema.properties?.timeoutMs).toEqual({ type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER });
    expect(componentSchemas().SubmitExecution.properties).toHaveProperty('retryOnKernelLoss');
  });

  it('completes a scanned operation from the table and marks an undescribed one', () => {
    const document = {
      openapi: '3.0.0',
      info: { title: 't', version: '1' },
      paths: {
        '/v1/owners/{ownerId}': { delete: { parameters: [{ name: 'ownerId', in: 'path', required: true, schema: { type: 'string' } }], responses: { '200': { description: '' } } } },
        '/v1/new-thing': { get: { responses: { '200': { description: '' } } } },
      },
    } as unknown as OpenAPIObject;
    const warnings: string[] = [];
    describeOperations(document, API_OPERATIONS, (m) => warnings.push(m));
    const owner = document.paths['/v1/owners/{ownerId}'].delete!;
    expect(owner.security).toEqual([{ tenantKey: [] }]);
    expect(Object.keys(owner.responses)).toEqual(['200', '400', '401', '404', '405', '503']);
    expect(owner.responses['401']).toEqual(problemResponse(401));
    expect(owner.parameters).toEqual([expect.objectContaining({ name: 'ownerId', in: 'path', schema: { type: 'string', pattern: '^[A-Za-z0-9._:-]{1,128}$' } })]);
    expect(warnings).toEqual(['OpenAPI: GET /v1/new-thing is not described in api-operations.ts']);
    expect(document.paths['/v1/new-thing'].get!.responses.default).toBeDefined();
  });
});
