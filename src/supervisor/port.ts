/** A TCP port that is free on 127.0.0.1 right now. */
import { createServer } from "node:net";

/**
 * Bind port 0, read what the kernel chose, release it. Someone may take it before supervisord binds it; the caller
 * copes with that (supervisord then fails with "Another program is already listening", and we retry once).
 */
export function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen({ host: "127.0.0.1", port: 0, exclusive: true }, () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error("could not get a free TCP port on 127.0.0.1"))));
    });
  });
}
