import { Catch, Inject, Injectable, type ArgumentsHost, type CanActivate, type ExceptionFilter, type ExecutionContext } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import type { ApiConfig } from '@kernelfleet/config';
import { unauthorized } from '../auth/bearer';
import { ProblemException } from '../problems/problem.exception';
import { API_CONFIG } from '../tokens';
import { AdminSessions, isPageNavigation } from './admin-sessions';

/** 401 of an /admin page or endpoint: a browser navigating is sent to the login form instead. */
export class AdminLoginRequired extends ProblemException {
  constructor(detail = 'missing or wrong admin credentials (Authorization: Bearer <ADMIN_KEY>, or log in at /admin/login)') {
    super('unauthorized', 401, detail, {}, unauthorized(detail).headers);
  }
}

/** The login form's address, coming back to `req`'s page afterwards. */
export function loginLocation(req: Request): string {
  return `/admin/login?next=${encodeURIComponent(req.originalUrl)}`;
}

/** Writes a problem as the api's ProblemFilter does, for plain Express middleware. */
export function sendProblem(res: Response, error: ProblemException): void {
  res.status(error.problem.status).set(error.headers).type('application/problem+json').send(JSON.stringify(error.problem));
}

/**
 * Who may see the /admin pages (fleet page, bull-board): the operator, by `Authorization:
 * Bearer <ADMIN_KEY>` or the session cookie of /admin/login. Without ADMIN_KEY the pages do not
 * exist: they answer what an unknown route answers, like the /admin/keys endpoints.
 */
@Injectable()
export class AdminAccess {
  readonly sessions?: AdminSessions;

  constructor(@Inject(API_CONFIG) config: ApiConfig) {
    this.sessions = config.auth.adminKey === undefined ? undefined : new AdminSessions(config.auth.adminKey);
  }

  /** The sessions when /admin exists; else throws the unknown-route 404. */
  enabled(req: Request): AdminSessions {
    // The api's own answer to a route it does not know (problem.filter.ts).
    if (!this.sessions) throw new ProblemException('notFound', 404, `no route ${req.method} ${req.path}`);
    return this.sessions;
  }

  /** Throws unless the request comes from the operator. */
  check(req: Request): void {
    const credential = this.enabled(req).credential(req);
    if (credential === null) throw new AdminLoginRequired();
    // SameSite=Strict already keeps other sites' requests from carrying the cookie; a changing
    // request that names another origin is refused all the same.
    if (credential === 'cookie' && !['GET', 'HEAD', 'OPTIONS'].includes(req.method) && !sameOrigin(req)) {
      throw new AdminLoginRequired('a changing request with the session cookie must come from this origin');
    }
  }

  /** The same check as Express middleware (bull-board is mounted outside Nest's routing). */
  middleware(): (req: Request, res: Response, next: NextFunction) => void {
    return (req, res, next) => {
      try {
        this.check(req);
        next();
      } catch (error) {
        if (error instanceof AdminLoginRequired && isPageNavigation(req)) res.redirect(303, loginLocation(req));
        else if (error instanceof ProblemException) sendProblem(res, error);
        else next(error);
      }
    };
  }
}

function sameOrigin(req: Request): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}

/** Nest guard of the /admin pages (see AdminAccess). */
@Injectable()
export class AdminPageGuard implements CanActivate {
  constructor(private readonly access: AdminAccess) {}

  canActivate(context: ExecutionContext): boolean {
    this.access.check(context.switchToHttp().getRequest<Request>());
    return true;
  }
}

/** Sends a browser that is not logged in to the login form; everyone else gets the 401 problem. */
@Catch(AdminLoginRequired)
export class AdminLoginRedirect implements ExceptionFilter {
  catch(error: AdminLoginRequired, host: ArgumentsHost): void {
    const req = host.switchToHttp().getRequest<Request>();
    const res = host.switchToHttp().getResponse<Response>();
    if (isPageNavigation(req)) res.redirect(303, loginLocation(req));
    else sendProblem(res, error);
  }
}
