/**
 * The benchmark's MCP client over Streamable HTTP, on plain node:http (keep-alive): POST a JSON-RPC message, parse
 * the SSE or JSON response, open a session (initialize + notifications/initialized). Lighter than the SDK's client,
 * so the load process is not the bottleneck. Used by load-child.mjs and the in-process round-trip part.
 */
import http from 'node:http';

const PROTOCOL = '2025-06-18';

export function post(agent, url, body, headers) {
  return new Promise((resolve, reject) => {
    const data = Buffer.from(JSON.stringify(body));
    const req = http.request(
      url,
      {
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'content-length': data.length,
          ...headers,
        },
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

/** The JSON-RPC response with `id` in a JSON or SSE body. */
export function responseOf(r, id) {
  if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${r.text.slice(0, 300)}`);
  const ct = r.headers['content-type'] ?? '';
  const messages = ct.includes('text/event-stream')
    ? r.text
        .split('\n')
        .filter((l) => l.startsWith('data:'))
        .map((l) => JSON.parse(l.slice(5)))
    : [JSON.parse(r.text)];
  const msg = messages.find((m) => m.id === id);
  if (!msg) throw new Error(`no response with id ${id} in: ${r.text.slice(0, 300)}`);
  return msg;
}

export async function openSession(agent, url, token) {
  const auth = token ? { authorization: `Bearer ${token}` } : {};
  const init = await post(
    agent,
    url,
    {
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: { protocolVersion: PROTOCOL, capabilities: {}, clientInfo: { name: 'itguard-bench', version: '1' } },
    },
    auth,
  );
  const msg = responseOf(init, 0);
  if (msg.error) throw new Error(`initialize failed: ${JSON.stringify(msg.error)}`);
  const sid = init.headers['mcp-session-id'];
  if (!sid) throw new Error('no Mcp-Session-Id');
  const headers = { ...auth, 'mcp-session-id': sid, 'mcp-protocol-version': msg.result.protocolVersion };
  const ack = await post(agent, url, { jsonrpc: '2.0', method: 'notifications/initialized' }, headers);
  if (ack.status !== 202) throw new Error(`notifications/initialized: HTTP ${ack.status}`);
  return headers;
}
