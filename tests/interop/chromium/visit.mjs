#!/usr/bin/env node
// Headless Chromium (Debian's /usr/bin/chromium driven by playwright-core from tests/ui) as an
// interop client for camera-web's tests/interop.rs.
//
//   node visit.mjs --tmp DIR ID ADDRESS PORT NAME CAFILE [ID ADDRESS PORT NAME CAFILE ...]
//
// Cases are grouped by CAFILE: for each, a fresh HOME under DIR holds an NSS database in which that
// CA is the only added trust anchor (certutil -t C,,), and one browser is launched with it. Every
// connection goes through a CONNECT proxy in this process that maps each case's NAME (a DNS name or
// an IP literal, public ones included) to its ADDRESS and refuses anything else, so a public name
// or address is never looked up or contacted, and Chromium still checks the certificate against
// the NAME in the URL. Each case loads https://NAME:PORT/ in a fresh context: the load must succeed
// with a trusted certificate, no ignoreHTTPSErrors; playwright gives each browser a fresh profile
// (user data dir). Prints one line per case: "ID OK" or "ID FAIL <net error> (certificate
// verifier: <its errors>)".
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const { chromium } = await import(path.join(here, '../../ui/node_modules/playwright-core/index.mjs'));

const argv = process.argv.slice(2);
if (argv[0] !== '--tmp' || argv.length < 7 || (argv.length - 2) % 5 !== 0) {
  console.error('usage: node visit.mjs --tmp DIR ID ADDRESS PORT NAME CAFILE [...]');
  process.exit(2);
}
const tmp = argv[1];
const cases = [];
for (let i = 2; i < argv.length; i += 5) {
  const [id, address, port, name, caFile] = argv.slice(i, i + 5);
  cases.push({ id, address, port, name, caFile });
}
// NAME:PORT -> ADDRESS:PORT, the only places the proxy connects to.
const routes = new Map(cases.map((c) => [`${c.name}:${c.port}`, { host: c.address, port: Number(c.port) }]));
const proxy = net.createServer((client) => {
  client.once('data', (head) => {
    // "CONNECT host:port HTTP/1.1"; an IPv6 host comes in brackets.
    const m = /^CONNECT (\S+) HTTP\/1\.[01]\r\n/.exec(head.toString('latin1'));
    const target = m && routes.get(m[1].replace(/^\[(.*)\](:\d+)$/, '$1$2'));
    if (!target) {
      client.end('HTTP/1.1 403 Forbidden\r\n\r\n');
      return;
    }
    const upstream = net.connect(target, () => {
      client.write('HTTP/1.1 200 Connection established\r\n\r\n');
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
});
await new Promise((resolve) => proxy.listen(0, '127.0.0.1', resolve));
const proxyServer = `http://127.0.0.1:${proxy.address().port}`;

const groups = new Map();
for (const c of cases) groups.set(c.caFile, [...(groups.get(c.caFile) || []), c]);

// Chromium's error page says only net::ERR_CERT_INVALID; its net log has the certificate verifier's
// own words (CERT_VERIFY_PROC_PATH_BUILT "errors", e.g. "Not permitted by name constraints"). Returns
// host -> the distinct errors of the paths it built for that host.
function verifierErrors(file) {
  const found = new Map();
  let log;
  try {
    log = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    return new Map();
  }
  const types = log.constants.logEventTypes;
  const hostOf = new Map();
  for (const e of log.events) {
    const p = e.params || {};
    if (e.type === types.CERT_VERIFY_PROC && p.host) hostOf.set(e.source.id, p.host);
    if (e.type === types.CERT_VERIFY_PROC_PATH_BUILT && p.errors && hostOf.has(e.source.id)) {
      const host = hostOf.get(e.source.id);
      if (!found.has(host)) found.set(host, new Set());
      for (const line of p.errors.split('\n')) if (line.startsWith('ERROR: ')) found.get(host).add(line.slice(7));
    }
  }
  return new Map([...found].map(([host, errors]) => [host, [...errors].join('; ')]));
}

let n = 0;
for (const [caFile, group] of groups) {
  const home = path.join(tmp, `home-${n++}`);
  const nssdb = path.join(home, '.pki', 'nssdb');
  fs.mkdirSync(nssdb, { recursive: true });
  execFileSync('certutil', ['-N', '--empty-password', '-d', `sql:${nssdb}`]);
  execFileSync('certutil', ['-A', '-n', 'anchor', '-t', 'C,,', '-i', caFile, '-d', `sql:${nssdb}`]);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', `--log-net-log=${path.join(home, 'netlog.json')}`,
      `--proxy-server=${proxyServer}`, '--proxy-bypass-list=<-loopback>'],
    env: { ...process.env, HOME: home },
  });
  const results = new Map();
  try {
    for (const c of group) {
      const host = c.name.includes(':') ? `[${c.name}]` : c.name;
      const ctx = await browser.newContext();
      try {
        const page = await ctx.newPage();
        const res = await page.goto(`https://${host}:${c.port}/`, { waitUntil: 'load', timeout: 20000 });
        const details = res && (await res.securityDetails());
        if (!res || !details) throw new Error(`no TLS details (status ${res && res.status()})`);
        results.set(c.id, 'OK');
      } catch (e) {
        results.set(c.id, `FAIL ${String((e && e.message) || e).split('\n')[0]}`);
      } finally {
        await ctx.close();
      }
    }
  } finally {
    await browser.close();
  }
  const reasons = verifierErrors(path.join(home, 'netlog.json'));
  for (const c of group) {
    const r = results.get(c.id);
    if (!r) continue; // no line: the Rust side reports the case as not run
    const why = reasons.get(c.name);
    console.log(`${c.id} ${r}${r.startsWith('FAIL') && why ? ` (certificate verifier: ${why})` : ''}`);
  }
}
proxy.close();
proxy.unref();
