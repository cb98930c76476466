import { Catch, Inject, Injectable, type ArgumentsHost, type CanActivate, type ExceptionFilter, type ExecutionContext } from '@nestjs/common';
import type { FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import type { ApiConfig } from '@kernelfleet/config';
import { unauthorized } from '../auth/bearer';
import { ProblemException } from '../problems/problem.exception';
import { noRoute } from '../problems/routing';
import { sendProblem } from '../problems/problem.filter';
import { API_CONFIG } from '../tokens';
import { AdminSessions, isPageNavigation } from './admin-sessions';

/** 401 of an /admin page or endpoint: a browser navigating is sent to the login form instead. */
export class AdminLoginRequired extends ProblemException {
  constructor(detail = 'missing or wrong admin credentials (Authorization: Bearer <ADMIN_KEY>, or log in at /admin/login)') {
    super('unauthorized', 401, detail, {}, unauthorized(detail).headers);
  }
}

export const ADMIN_LOGIN_PATH = '/admin/login';

/** The login form's address, coming back to `req`'s page afterwards. */
export function loginLocation(req: FastifyRequest): string {
  return `${ADMIN_LOGIN_PATH}?next=${encodeURIComponent(req.url)}`;
}

/** Writes `error` as the api's ProblemFilter does, headers included. */
function sendProblemOf(res: FastifyReply, error: ProblemException): void {
  sendProblem(res.headers(error.headers), error.problem);
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
  enabled(req: FastifyRequest): AdminSessions {
    if (!this.sessions) throw noRoute(req);
    return this.sessions;
  }

  /** Throws unless the request comes from the operator. */
  check(req: FastifyRequest): void {
    const credential = this.enabled(req).credential(req);
    if (credential === null) throw new AdminLoginRequired();
    // SameSite=Strict already keeps other sites' requests from carrying the cookie; a changing
    // request that names another origin is refused all the same.
    if (credential === 'cookie' && !['GET', 'HEAD', 'OPTIONS'].includes(req.method) && !sameOrigin(req)) {
      throw new AdminLoginRequired('a changing request with the session cookie must come from this origin');
    }
  }

  /** The same check as a Fastify hook (bull-board is mounted outside Nest's routing). */
  hook(): onRequestHookHandler {
    return (req, res, done) => {
      try {
        this.check(req);
        done();
      } catch (error) {
        if (error instanceof AdminLoginRequired && isPageNavigation(req)) res.redirect(loginLocation(req), 303);
        else if (error instanceof ProblemException) sendProblemOf(res, error);
        else done(error as Error);
      }
    };
  }
}

function sameOrigin(req: FastifyRequest): boolean {
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
    this.access.check(context.switchToHttp().getRequest<FastifyRequest>());
    return true;
  }
}

/** Sends a browser that is not logged in to the login form; everyone else gets the 401 problem. */
@Catch(AdminLoginRequired)
export class AdminLoginRedirect implements ExceptionFilter {
  catch(error: AdminLoginRequired, host: ArgumentsHost): void {
    const req = host.switchToHttp().getRequest<FastifyRequest>();
    const res = host.switchToHttp().getResponse<FastifyReply>();
    if (isPageNavigation(req)) res.redirect(loginLocation(req), 303);
    else sendProblemOf(res, error);
  }
}
