import type { Request } from 'express';

/** The parts of an Express 5 (`router` 2) route layer read here. */
interface RouteLayer {
  route?: { methods: Record<string, boolean | undefined> };
  match(path: string): unknown;
}

/**
 * The methods the api serves at the request's path, read from the app's own route table, so a
 * known path asked with another method answers 405 with `Allow` instead of 404. Empty when no
 * route has this path. HEAD comes with GET, as Express answers it.
 */
export function allowedMethods(req: Request): string[] {
  const stack = (req.app as unknown as { router?: { stack?: RouteLayer[] } }).router?.stack ?? [];
  const allowed = new Set<string>();
  for (const layer of stack) {
    if (!layer.route) continue;
    let matches: unknown;
    try {
      matches = layer.match(req.path);
    } catch {
      continue; // a path segment that is not valid percent-encoding matches no route
    }
    if (!matches) continue;
    for (const [method, on] of Object.entries(layer.route.methods)) {
      if (on && method !== '_all') allowed.add(method.toUpperCase());
    }
  }
  if (allowed.has('GET')) allowed.add('HEAD');
  return [...allowed].sort();
}
