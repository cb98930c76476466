import { Counter, Registry } from 'prom-client';
import { MetricsServer } from './metrics-server';

describe('MetricsServer', () => {
  it('answers GET /metrics in the Prometheus text format and nothing else', async () => {
    const registry = new Registry();
    new Counter({ name: 'kernelfleet_test_total', help: 'test', registers: [registry] }).inc(3);
    const server = new MetricsServer(registry);
    const port = await server.listen(0, '127.0.0.1');
    try {
      const res = await fetch(`http://127.0.0.1:${port}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain;.*version=0\.0\.4/);
      expect(await res.text()).toContain('kernelfleet_test_total 3');
      expect((await fetch(`http://127.0.0.1:${port}/other`)).status).toBe(404);
      const post = await fetch(`http://127.0.0.1:${port}/metrics`, { method: 'POST' });
      expect([post.status, post.headers.get('allow')]).toEqual([405, 'GET, HEAD']);
    } finally {
      await server.close();
    }
  });

  it('refuses to start on a port that is taken', async () => {
    const first = new MetricsServer(new Registry());
    const port = await first.listen(0, '127.0.0.1');
    try {
      await expect(new MetricsServer(new Registry()).listen(port, '127.0.0.1')).rejects.toThrow(/EADDRINUSE/);
    } finally {
      await first.close();
    }
  });
});
