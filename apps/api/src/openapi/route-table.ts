import { RequestMethod, type Type } from '@nestjs/common';
import { METHOD_METADATA, MODULE_METADATA, PATH_METADATA } from '@nestjs/common/constants';

/**
 * The routes the controllers of `module` declare, as `METHOD /path/{param}` (the OpenAPI
 * spelling, where a trailing wildcard `*` is `{path}`, as @nestjs/swagger names it), sorted.
 * Read from Nest's decorator metadata, so it needs no running app.
 */
export function controllerRoutes(module: Type<unknown>): string[] {
  const controllers = controllersOf(module);
  const routes: string[] = [];
  for (const controller of controllers) {
    const prefixes = [Reflect.getMetadata(PATH_METADATA, controller) as string | string[]].flat();
    const proto = controller.prototype as Record<string, unknown>;
    for (const name of Object.getOwnPropertyNames(proto)) {
      const handler = proto[name];
      if (name === 'constructor' || typeof handler !== 'function') continue;
      const method = Reflect.getMetadata(METHOD_METADATA, handler) as RequestMethod | undefined;
      const paths = Reflect.getMetadata(PATH_METADATA, handler) as string | string[] | undefined;
      if (method === undefined || paths === undefined) continue;
      for (const prefix of prefixes) {
        for (const path of [paths].flat()) {
          const joined = `/${[prefix, path].filter((p) => p && p !== '/').join('/')}`.replace(/\/+/g, '/').replace(/[:*]([A-Za-z0-9_]+)/g, '{$1}').replace(/\/\*$/, '/{path}');
          routes.push(`${RequestMethod[method]} ${joined}`);
        }
      }
    }
  }
  return routes.sort();
}

/** The controllers of `module` and of the feature modules it imports, however deep. */
function controllersOf(module: Type<unknown>, seen = new Set<Type<unknown>>()): Type<unknown>[] {
  if (seen.has(module)) return [];
  seen.add(module);
  const own = (Reflect.getMetadata(MODULE_METADATA.CONTROLLERS, module) ?? []) as Type<unknown>[];
  const imports = (Reflect.getMetadata(MODULE_METADATA.IMPORTS, module) ?? []) as Type<unknown>[];
  return [...own, ...imports.flatMap((imported) => controllersOf(imported, seen))];
}
