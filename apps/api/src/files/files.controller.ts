import { Controller, Delete, Get, HttpCode, Param, Put, Query, Req, Res, UseGuards } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiKeyGuard } from '../auth/api-key.guard';
import { Tenant } from '../auth/tenant.decorator';
import { requestPath } from '../problems/routing';
import { FilesService, type FileRoute, type FilesQuery } from './files.service';

/**
 * `/v1/sessions/{id}/files[/{path}]`. The path is taken from the raw URL, still percent-encoded,
 * so it is decoded exactly once, by the rules of parseFilePath (a router would decode it first).
 */
function routeOf(tenant: string, sessionId: string, req: FastifyRequest): FileRoute {
  const url = requestPath(req);
  const marker = '/files/';
  const at = url.indexOf(marker);
  return { tenant, sessionId, encodedPath: at < 0 ? '' : url.slice(at + marker.length) };
}

@Controller('v1/sessions/:sessionId/files')
@UseGuards(ApiKeyGuard)
export class FilesController {
  constructor(private readonly files: FilesService) {}

  @Get()
  async listOrArchive(@Tenant() tenant: string, @Param('sessionId') sessionId: string, @Query() query: FilesQuery, @Req() req: FastifyRequest, @Res() res: FastifyReply) {
    const route = routeOf(tenant, sessionId, req);
    if (query.format !== undefined) return this.files.get(route, query, req.raw, res.raw);
    res.send(await this.files.list(route, query));
  }

  @Get('*')
  read(@Tenant() tenant: string, @Param('sessionId') sessionId: string, @Query() query: FilesQuery, @Req() req: FastifyRequest, @Res() res: FastifyReply) {
    return this.files.get(routeOf(tenant, sessionId, req), query, req.raw, res.raw);
  }

  @Put()
  async unpackAtRoot(@Tenant() tenant: string, @Param('sessionId') sessionId: string, @Query() query: FilesQuery, @Req() req: FastifyRequest, @Res() res: FastifyReply) {
    const { status, body } = await this.files.put(routeOf(tenant, sessionId, req), query, req.raw);
    res.status(status).send(body);
  }

  @Put('*')
  async write(@Tenant() tenant: string, @Param('sessionId') sessionId: string, @Query() query: FilesQuery, @Req() req: FastifyRequest, @Res() res: FastifyReply) {
    const { status, body } = await this.files.put(routeOf(tenant, sessionId, req), query, req.raw);
    res.status(status).send(body);
  }

  @Delete('*')
  @HttpCode(204)
  remove(@Tenant() tenant: string, @Param('sessionId') sessionId: string, @Query() query: FilesQuery, @Req() req: FastifyRequest) {
    return this.files.remove(routeOf(tenant, sessionId, req), query);
  }
}
