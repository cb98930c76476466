/** Injection token of the api's configuration. */
export const API_CONFIG = Symbol('API_CONFIG');
