// GET /health (200 when consuming and writing, 503 otherwise) and GET /metrics.
import * as http from 'http';
import type { Metrics } from './metrics';

export interface HealthSource {
  health(): { ok: boolean; [k: string]: unknown };
}

export function startHttp(host: string, port: number, metrics: Metrics, source: HealthSource): Promise<http.Server> {
  const server = http.createServer(async (req, res) => {
    try {
      if (req.url === '/health') {
        const h = source.health();
        res.writeHead(h.ok ? 200 : 503, { 'content-type': 'application/json' });
        res.end(JSON.stringify(h));
      } else if (req.url === '/metrics') {
        res.writeHead(200, { 'content-type': metrics.registry.contentType });
        res.end(await metrics.registry.metrics());
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found: try /health or /metrics\n');
      }
    } catch (err) {
      res.writeHead(500);
      res.end(String(err));
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' ? new Error(`port ${port} (PROCESSOR_PORT) is already in use`) : err));
    server.listen(port, host, () => resolve(server));
  });
}
