import { Body, Controller, Get, Header, Post, Query, Req, Res, UseFilters, UseGuards } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FleetSnapshot } from '@kernelfleet/store';
import { declaredAs } from '../problems/body-parsers';
import { ADMIN_LOGIN_PATH, AdminAccess, AdminLoginRedirect, AdminLoginRequired, AdminPageGuard } from './admin-access';
import { isHttps, safeNext } from './admin-sessions';
import { FleetDashboardService } from './fleet-dashboard.service';
import { ADMIN_PAGE_CSP, dashboardScript, fleetPage, loginPage } from './fleet-page';

/** The operator's pages: the live fleet page, its JSON, and the login that gives browsers a session cookie. */
@Controller('admin')
@UseFilters(AdminLoginRedirect)
export class AdminDashboardController {
  private readonly script = dashboardScript();

  constructor(
    private readonly access: AdminAccess,
    private readonly fleet: FleetDashboardService,
  ) {}

  @Get()
  @UseGuards(AdminPageGuard)
  @Header('Content-Type', 'text/html; charset=utf-8')
  @Header('Cache-Control', 'no-store')
  @Header('Content-Security-Policy', ADMIN_PAGE_CSP)
  async page(): Promise<string> {
    return fleetPage(await this.fleet.snapshot());
  }

  @Get('fleet.json')
  @UseGuards(AdminPageGuard)
  @Header('Cache-Control', 'no-store')
  fleetJson(): Promise<FleetSnapshot> {
    return this.fleet.snapshot();
  }

  @Get('dashboard.js')
  @UseGuards(AdminPageGuard)
  @Header('Content-Type', 'text/javascript; charset=utf-8')
  @Header('Cache-Control', 'no-store')
  clientScript(): string {
    return this.script;
  }

  @Get('login')
  @Header('Content-Type', 'text/html; charset=utf-8')
  @Header('Cache-Control', 'no-store')
  @Header('Content-Security-Policy', ADMIN_PAGE_CSP)
  loginForm(@Req() req: FastifyRequest, @Query('next') next: unknown): string {
    this.access.enabled(req);
    return loginPage(safeNext(next));
  }

  /**
   * `{key, next?}` as a form (browsers: 303 to `next` with the session cookie, or the form
   * again with 401) or JSON (scripts: 204 with the cookie, or a 401 problem).
   */
  @Post('login')
  login(@Req() req: FastifyRequest, @Res() res: FastifyReply, @Body() body: unknown): void {
    const sessions = this.access.enabled(req);
    const fields = (body && typeof body === 'object' ? body : {}) as Record<string, unknown>;
    const next = safeNext(fields.next);
    const fromForm = declaredAs(req, 'application/x-www-form-urlencoded');
    if (typeof fields.key !== 'string' || !sessions.isAdminKey(fields.key)) {
      if (!fromForm) throw new AdminLoginRequired('wrong admin key');
      res
        .status(401)
        .headers({ 'Cache-Control': 'no-store', 'Content-Security-Policy': ADMIN_PAGE_CSP })
        .type('text/html; charset=utf-8')
        .send(loginPage(next, 'Wrong admin key.'));
      return;
    }
    res.headers({ 'Set-Cookie': sessions.cookie(sessions.issue(), isHttps(req)), 'Cache-Control': 'no-store' });
    if (fromForm) res.redirect(next, 303);
    else res.status(204).send();
  }

  @Post('logout')
  logout(@Req() req: FastifyRequest, @Res() res: FastifyReply): void {
    const sessions = this.access.enabled(req);
    res.header('Set-Cookie', sessions.clearedCookie(isHttps(req))).redirect(ADMIN_LOGIN_PATH, 303);
  }
}
