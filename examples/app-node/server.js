// A small app process for App Service (docs/sites.md "App processes"): plain Node, no npm
// packages. rampart starts it with PORT set and proxies https://NAME.D/ to it.
//   rampart app create hello-node
//   rampart app config hello-node --command "node server.js"
//   rampart app deploy hello-node examples/app-node
import http from 'node:http';
import fs from 'node:fs';

// PORT is a number, or (an app of the isolated tier) the path of a unix socket.
const port = /^\d+$/.test(process.env.PORT || '') ? Number(process.env.PORT) : process.env.PORT || 8080;
const version = fs.existsSync('version.txt') ? fs.readFileSync('version.txt', 'utf8').trim() : '1';

const server = http.createServer((req, res) => {
  console.log(`${new Date().toISOString()} ${req.method} ${req.url}`);
  const url = new URL(req.url, 'http://app');
  switch (url.pathname) {
    case '/':
      res.end(`hello from node, version ${version}\n`);
      break;
    case '/headers':
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(req.headers));
      break;
    case '/env':
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(process.env));
      break;
    case '/echo':
      // Streams the body back as it arrives (chunked answer).
      res.setHeader('content-type', 'application/octet-stream');
      req.pipe(res);
      break;
    case '/big': {
      const n = Number(url.searchParams.get('mb') || 4) * 1024 * 1024;
      const chunk = Buffer.alloc(65536, 'x');
      let sent = 0;
      const more = () => {
        while (sent < n) {
          sent += chunk.length;
          if (!res.write(chunk)) return res.once('drain', more);
        }
        res.end();
      };
      more();
      break;
    }
    case '/read': {
      // What the sandbox lets the app see of the host.
      const path = url.searchParams.get('path');
      try {
        res.end(fs.readFileSync(path));
      } catch (e) {
        res.statusCode = 404;
        res.end(String(e.code));
      }
      break;
    }
    case '/crash':
      res.end('bye\n', () => process.exit(3));
      break;
    default:
      res.statusCode = 404;
      res.end('not found\n');
  }
});
server.listen(port, '127.0.0.1', () => console.log(`listening on ${port}`));
