import { Body, Controller, Get, Header, Post, Query, Req, Res, UseFilters, UseGuards } from '@nestjs/common';
import type { Request, Response } from 'express';
import type { FleetSnapshot } from '@kernelfleet/store';
import { AdminAccess, AdminLoginRedirect, AdminLoginRequired, AdminPageGuard } from './admin-access';
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
  loginForm(@Req() req: Request, @Query('next') next: unknown): string {
    this.access.enabled(req);
    return loginPage(safeNext(next));
  }

  /**
   * `{key, next?}` as a form (browsers: 303 to `next` with the session cookie, or the form
   * again with 401) or JSON (scripts: 204 with the cookie, or a 401 problem).
   */
  @Post('login')
  login(@Req() req: Request, @Res() res: Response, @Body() body: unknown): void {
    const sessions = this.access.enabled(req);
    const fields = (body && typeof body === 'object' ? body : {}) as Record<string, unknown>;
    const next = safeNext(fields.next);
    const fromForm = typeof req.is('application/x-www-form-urlencoded') === 'string';
    if (typeof fields.key !== 'string' || !sessions.isAdminKey(fields.key)) {
      if (!fromForm) throw new AdminLoginRequired('wrong admin key');
      res.status(401).set({ 'Cache-Control': 'no-store', 'Content-Security-Policy': ADMIN_PAGE_CSP }).type('html').send(loginPage(next, 'Wrong admin key.'));
      return;
    }
    res.set({ 'Set-Cookie': sessions.cookie(sessions.issue(), isHttps(req)), 'Cache-Control': 'no-store' });
    if (fromForm) res.redirect(303, next);
    else res.status(204).end();
  }

  @Post('logout')
  logout(@Req() req: Request, @Res() res: Response): void {
    const sessions = this.access.enabled(req);
    res.set('Set-Cookie', sessions.clearedCookie(isHttps(req))).redirect(303, '/admin/login');
  }
}
