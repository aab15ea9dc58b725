#!/usr/bin/env node
// Browser walk through camera-web's UI in headless Chromium, trusting the camera CA the real way
// (an NSS database in a fresh HOME, no ignoreHTTPSErrors).
//
//   node tests/ui/walk.mjs --url https://127.0.0.1:8443 --ca /tmp/uiw/state/ca.crt \
//        --artifacts DIR --signer-dir DIR [--password PW] [--chromium /usr/bin/chromium]
// or the environment variables CAMERA_URL, CAMERA_CA, UI_ARTIFACTS, UI_SIGNER_DIR, UI_PASSWORD,
// CHROMIUM. The camera must be fresh (no admin password yet) unless --password is its password.
// Prints one line per step and finally "N passed, M failed"; exits non-zero on any failure.
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

// ---- arguments -----------------------------------------------------------------------------
function args() {
  const a = {};
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(argv[i]);
    if (!m) throw new Error(`unexpected argument ${argv[i]}`);
    a[m[1]] = m[2] !== undefined ? m[2] : argv[++i];
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ui-walk-'));
  const o = {
    url: a.url || process.env.CAMERA_URL,
    ca: a.ca || process.env.CAMERA_CA,
    artifacts: a.artifacts || process.env.UI_ARTIFACTS || path.join(tmp, 'artifacts'),
    signerDir: a['signer-dir'] || process.env.UI_SIGNER_DIR || path.join(tmp, 'signer'),
    password: a.password || process.env.UI_PASSWORD || 'walk-password-1',
    existingPassword: !!(a.password || process.env.UI_PASSWORD),
    chromium: a.chromium || process.env.CHROMIUM || '/usr/bin/chromium',
    // A test ACME server (Pebble) and the CA its TLS certificate chains to: the enrollment steps.
    acmeDirectory: a['acme-directory'] || process.env.ACME_DIRECTORY,
    acmeTrust: a['acme-trust'] || process.env.ACME_TRUST,
    acmeRoot: a['acme-root'] || process.env.ACME_ROOT,
    tmp,
  };
  if (!o.url || !o.ca || !o.acmeDirectory || !o.acmeTrust || !o.acmeRoot) {
    console.error('usage: node walk.mjs --url https://HOST:PORT --ca cacert.pem --acme-directory URL --acme-trust tls-ca.pem --acme-root issuing-root.pem [--artifacts DIR] [--signer-dir DIR] [--password PW]');
    process.exit(2);
  }
  o.url = o.url.replace(/\/+$/, '');
  return o;
}

const opt = args();
const started = Date.now();
fs.mkdirSync(opt.artifacts, { recursive: true });
fs.mkdirSync(opt.signerDir, { recursive: true });
const host = new URL(opt.url).hostname.replace(/^\[|\]$/g, '');
const hostIsIp = /^[0-9.]+$/.test(host) || host.includes(':');

const run = (cmd, argv, cwd) => execFileSync(cmd, argv, { cwd, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
const cn = (dn) => ((/(?:^|\n|,\s*)CN=([^\n,]+)/.exec(dn) || [])[1] || '').trim();
const fingerprint = (pemOrDer) => new X509Certificate(pemOrDer).fingerprint256;

let passed = 0;
let failed = 0;
let page;
async function step(name, fn) {
  const t = Date.now();
  try {
    await fn();
    passed++;
    console.log(`ok   ${passed + failed}. ${name} (${Date.now() - t} ms)`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${passed + failed}. ${name}: ${e && e.message ? e.message.split('\n')[0] : e}`);
    if (page) await page.screenshot({ path: path.join(opt.artifacts, `fail-${passed + failed}.png`), fullPage: true }).catch(() => {});
    if (e && typeof e === 'object') e.fromStep = true;
    throw e;
  }
}
function check(cond, msg) { if (!cond) throw new Error(msg); }
// From the top: the sticky section menu would otherwise sit in the middle of a full-page shot.
async function shot(name) {
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(opt.artifacts, name), fullPage: true });
}
async function text(sel) { return (await page.locator(sel).textContent() || '').trim(); }
async function visible(sel) { return page.locator(sel).isVisible(); }
// Opens one section through the menu and checks that the URL and the menu say so.
async function open(tab) {
  await page.click(`#nav a[href="#${tab}"]`);
  await page.locator(`.panel[data-tab="${tab}"]`).waitFor({ state: 'visible' });
  check(page.url().endsWith(`#${tab}`), `URL ${page.url()} is not #${tab}`);
  check(await text('#nav [aria-current=page]') === await text(`#nav a[href="#${tab}"]`), `menu does not mark ${tab} current`);
}

// ---- trust store and test CA (before the browser starts) ------------------------------------
const home = path.join(opt.tmp, 'home');
const nssdb = path.join(home, '.pki', 'nssdb');
const caPem = fs.readFileSync(opt.ca, 'utf8');
const caFingerprint = fingerprint(caPem);
const caCn = cn(new X509Certificate(caPem).subject);
// Two tiers: the root (cacert.crt) is trusted, its issuing CA signs what the camera serves. The
// issuing CA's certificate is the first one in state/issuing-ca.pem, beside ca.crt.
const issuingPem = (fs.readFileSync(path.join(path.dirname(opt.ca), 'issuing-ca.pem'), 'utf8')
  .match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/) || [])[0];
const issuing = new X509Certificate(issuingPem);
const issuingCn = cn(issuing.subject);
if (cn(issuing.issuer) !== caCn) throw new Error(`issuing CA ${issuingCn} is not under the root ${caCn}`);
const testCaCn = 'UI Walk Test CA';

function prepare() {
  fs.mkdirSync(nssdb, { recursive: true });
  run('certutil', ['-N', '--empty-password', '-d', `sql:${nssdb}`]);
  run('certutil', ['-A', '-n', 'camera-ca', '-t', 'C,,', '-i', opt.ca, '-d', `sql:${nssdb}`]);
  // The installer's CA that later signs the camera's request (openssl CLI, as camera makers' instructions do it).
  fs.writeFileSync(path.join(opt.signerDir, 'testca.cnf'), [
    '[req]', 'distinguished_name=dn', 'x509_extensions=v3', 'prompt=no',
    '[dn]', `CN=${testCaCn}`, 'O=Camera UI test',
    '[v3]', 'basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign',
    'subjectKeyIdentifier=hash', 'authorityKeyIdentifier=keyid:always', '',
  ].join('\n'));
  run('openssl', ['req', '-x509', '-config', 'testca.cnf', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
    '-nodes', '-keyout', 'testca.key', '-out', 'testca.pem', '-days', '30'], opt.signerDir);
  // The root the test ACME server issues from, as a site that runs its own CA has it installed.
  run('certutil', ['-A', '-n', 'site-acme-root', '-t', 'C,,', '-i', opt.acmeRoot, '-d', `sql:${nssdb}`]);
  check(run('certutil', ['-L', '-d', `sql:${nssdb}`]).includes('camera-ca'), 'camera CA not in the NSS database');
}

// Opens the page in a fresh browser context (new TLS connection, nothing cached) and checks that
// Chromium accepted the certificate by itself and which CA issued it.
async function tlsCheck(browser, expectIssuer) {
  const ctx = await browser.newContext();
  try {
    const p = await ctx.newPage();
    const res = await p.goto(opt.url + '/', { waitUntil: 'load' });
    check(res && res.ok(), `fresh load failed: ${res && res.status()}`);
    check(p.url().startsWith('https://'), `not https: ${p.url()}`);
    const sd = await res.securityDetails();
    check(sd, 'no securityDetails: not a trusted TLS connection');
    check(sd.issuer === expectIssuer, `served certificate issued by "${sd.issuer}", expected "${expectIssuer}"`);
    return sd;
  } finally {
    await ctx.close();
  }
}

async function main() {
  console.log(`walk: ${opt.url}, camera CA "${caCn}" ${caFingerprint.slice(0, 23)}…, artifacts ${opt.artifacts}`);
  await step('trust store: camera CA in a fresh NSS database; test installer CA made with openssl', prepare);

  const browser = await chromium.launch({
    executablePath: opt.chromium,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--password-store=basic'],
    env: { ...process.env, HOME: home },
  });
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 }, acceptDownloads: true });
  // The contract, from the UI's side: every property the page reads from a JSON answer must be one
  // the server sent (the server always sends every field, null when empty). Reads of anything
  // else are reported on the console as "contract-miss: <path>".
  await context.addInitScript(() => {
    const original = Response.prototype.json;
    const watch = (value, path) => {
      if (value === null || typeof value !== 'object') return value;
      return new Proxy(value, {
        get(target, prop, receiver) {
          if (typeof prop === 'string' && !(prop in target) && prop !== 'then' && prop !== 'toJSON') {
            console.warn(`contract-miss: ${path}.${prop}`);
          }
          return watch(Reflect.get(target, prop, receiver), `${path}.${String(prop)}`);
        },
      });
    };
    Response.prototype.json = async function json() {
      return watch(await original.call(this), new URL(this.url).pathname);
    };
  });
  page = await context.newPage();
  const problems = [];
  const contractMisses = new Set();
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.text().startsWith('contract-miss: ')) contractMisses.add(m.text().slice(15).replace(/\.\d+\./g, '[].'));
    // 4xx answers are expected (refused upload, wrong password, no favicon); anything else is not.
    if (m.type() === 'error' && !/^Failed to load resource: the server responded with a status of 4\d\d/.test(m.text())) {
      problems.push(`console: ${m.text()}`);
    }
  });
  const ready = () => page.waitForSelector('#cert-source:not(:empty)', { state: 'attached', timeout: 10000 });

  try {
    let securityDetails;
    await step('page loads over https with no certificate error', async () => {
      const res = await page.goto(opt.url + '/', { waitUntil: 'load' });
      check(res && res.ok(), `status ${res && res.status()}`);
      check(page.url().startsWith('https://'), `not https: ${page.url()}`);
      securityDetails = await res.securityDetails();
      check(securityDetails, 'no securityDetails');
      check(securityDetails.issuer === issuingCn, `issuer ${securityDetails.issuer} != camera issuing CA ${issuingCn}`);
      const csp = (await res.allHeaders())['content-security-policy'] || '';
      check(/script-src 'self'/.test(csp), `Content-Security-Policy header missing or different: "${csp}"`);
      await ready();
    });

    if (!opt.existingPassword) {
      await step('first run shows only the "Set the admin password" form', async () => {
        check(await visible('#setup'), 'setup form hidden');
        check(!(await visible('#login')), 'login form shown on first run');
        check(!(await visible('#csr')) && !(await visible('#upload')), 'change sections shown without a password');
        check(await visible('#cert') && await visible('#ca'), 'read-only sections hidden');
        await shot('01-setup.png');
      });
      await step('set the admin password (mismatch refused first)', async () => {
        await page.fill('#setup-pw', opt.password);
        await page.fill('#setup-pw2', opt.password + 'x');
        await page.click('#setup-submit');
        await page.locator('#setup [role=alert]').waitFor();
        check(/not the same/.test(await text('#setup [role=alert]')), 'no mismatch message');
        await page.fill('#setup-pw2', opt.password);
        await page.click('#setup-submit');
        await page.locator('#nav').waitFor({ state: 'visible' });
        check(await visible('#account'), 'no logout button');
        check(/logged in/.test(await text('#status')), 'no status line after setup');
      });
    } else {
      await step('log in with the given password', async () => {
        check(await visible('#login'), 'login form hidden');
        await page.fill('#login-pw', opt.password);
        await page.click('#login-submit');
        await page.locator('#nav').waitFor({ state: 'visible' });
      });
    }

    await step('viewer shows the camera\'s own certificate', async () => {
      check(await text('#cert-source') === 'Made by this camera', `source "${await text('#cert-source')}"`);
      check(/No reboot/.test(await text('#cert-auto')), 'no "no reboot needed" note');
      check((await text('#cert-issuer')).includes(issuingCn), 'issuer is not the camera issuing CA');
      check(/expires in \d+ (day|hour)/.test(await text('#cert-rel')), `relative expiry "${await text('#cert-rel')}"`);
      check(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/.test(await text('#cert-sha')), 'certificate SHA-256 not shown');
      check(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/.test(await text('#cert-pksha')), 'public key SHA-256 not shown');
      const sans = await page.locator('#cert-sans li').allTextContents();
      check(sans.includes(host), `SANs ${sans} miss ${host}`);
      await shot('02-certificate.png');
    });

    await step('CA download links give cacert.crt (PEM and DER) with the fingerprint shown', async () => {
      check((await text('#ca-sha')) === caFingerprint, `page shows ${await text('#ca-sha')}, CA file is ${caFingerprint}`);
      check((await text('#ca-issuing')).includes(issuingCn), `page says it signs with: ${await text('#ca-issuing')}`);
      check(!(await visible('#ca-one-tier')), 'a two-tier CA is shown with the one-tier advice');
      for (const [sel, file] of [['#ca-pem', 'cacert-pem.crt'], ['#ca-der', 'cacert-der.crt']]) {
        const [dl] = await Promise.all([page.waitForEvent('download'), page.click(sel)]);
        check(dl.suggestedFilename() === 'cacert.crt', `${sel} downloads as ${dl.suggestedFilename()}`);
        const to = path.join(opt.signerDir, file);
        await dl.saveAs(to);
        const bytes = fs.readFileSync(to);
        if (sel === '#ca-pem') check(bytes.toString().includes('-----BEGIN CERTIFICATE-----'), 'PEM download is not PEM');
        else check(bytes[0] === 0x30, 'DER download is not DER');
        check(fingerprint(bytes) === caFingerprint, `${sel} is not the camera CA`);
      }
    });

    await step('every input has a label and every button has text', async () => {
      const bad = await page.evaluate(() => {
        const out = [];
        for (const e of document.querySelectorAll('input, select, textarea')) {
          if (!(e.labels && e.labels.length) && !e.getAttribute('aria-label')) out.push(e.id || e.name);
        }
        for (const b of document.querySelectorAll('button, a.button')) if (!b.textContent.trim()) out.push(b.id);
        return out;
      });
      check(bad.length === 0, `unlabelled: ${bad.join(', ')}`);
    });

    await step('create a certificate request (CN + names including the URL host)', async () => {
      await open('request');
      const prefilled = await page.inputValue('#csr-sans');
      check(prefilled.split('\n').includes(host), `names not prefilled with ${host}: ${JSON.stringify(prefilled)}`);
      check(/works only on this camera/.test(await text('#csr')), 'no "works only on this camera" explanation');
      await page.fill('#csr-c', 'DE');
      await page.fill('#csr-st', 'Berlin');
      await page.fill('#csr-l', 'Berlin');
      await page.fill('#csr-o', 'Camera UI test');
      await page.fill('#csr-ou', 'QA');
      await page.fill('#csr-cn', 'UI walk camera');
      if (!prefilled.split('\n').includes(host)) await page.fill('#csr-sans', `${prefilled}\n${host}`);
      await page.selectOption('#csr-key', 'ecdsa-p256');
      await page.click('#csr-submit');
      await page.locator('#csr-result').waitFor({ state: 'visible', timeout: 20000 });
      const pem = await page.inputValue('#csr-pem');
      check(pem.includes('-----BEGIN CERTIFICATE REQUEST-----'), 'no PEM CSR shown');
      await page.locator('#csr-pending').waitFor({ state: 'visible' });
      check((await text('#csr-p-subject')).includes('UI walk camera'), 'pending request not shown');
      await shot('03-csr.png');
    });

    const csrPath = path.join(opt.signerDir, 'certreq.pem');
    await step('download certreq.pem through the link', async () => {
      const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#csr-download')]);
      check(dl.suggestedFilename() === 'certreq.pem', `downloads as ${dl.suggestedFilename()}`);
      await dl.saveAs(csrPath);
      const out = run('openssl', ['req', '-in', csrPath, '-noout', '-verify', '-subject', '-text']);
      check(/UI walk camera/.test(out), 'CSR subject lacks the CN');
      check(out.includes(hostIsIp ? `IP Address:${host}` : `DNS:${host}`), 'CSR lacks the URL host in subjectAltName');
    });

    const signed = path.join(opt.signerDir, 'signed.pem');
    await step('sign the request with the test installer CA (openssl x509 -req) and trust that CA in the NSS database', async () => {
      fs.writeFileSync(path.join(opt.signerDir, 'leaf.ext'),
        `subjectAltName=${hostIsIp ? 'IP' : 'DNS'}:${host}\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n` +
        'basicConstraints=CA:FALSE\nauthorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n');
      run('openssl', ['x509', '-req', '-in', 'certreq.pem', '-CA', 'testca.pem', '-CAkey', 'testca.key', '-CAcreateserial',
        '-days', '30', '-sha256', '-extfile', 'leaf.ext', '-out', 'signed.pem'], opt.signerDir);
      run('openssl', ['verify', '-CAfile', 'testca.pem', 'signed.pem'], opt.signerDir);
      // The installer's CA becomes trusted on this "PC" the real way: into the same NSS database
      // (Chromium reads it live).
      run('certutil', ['-A', '-n', 'installer-test-ca', '-t', 'C,,', '-i', path.join(opt.signerDir, 'testca.pem'), '-d', `sql:${nssdb}`]);
      check(run('certutil', ['-L', '-d', `sql:${nssdb}`]).includes('installer-test-ca'), 'test CA not in the NSS database');
    });

    await step('a refused upload shows the server\'s message and keeps the certificate', async () => {
      await page.fill('#up-paste', 'this is not a certificate');
      await page.click('#upload-submit');
      const alert = page.locator('#upload [role=alert]');
      await alert.waitFor();
      const msg = (await alert.textContent()).trim();
      check(msg.length > 20 && /not changed/.test(msg), `message "${msg}"`);
      check(await text('#cert-source') === 'Made by this camera', 'source changed after a refused upload');
      await shot('04-upload-refused.png');
      await page.fill('#up-paste', '');
    });

    await step('upload the signed certificate without a key (pairs with the pending request)', async () => {
      await page.setInputFiles('#up-cert', signed);
      await page.click('#upload-submit');
      await page.locator('#upload .msg [role=status]:not(.busy)').filter({ hasText: 'now uses' }).waitFor({ timeout: 20000 });
      await page.waitForFunction(() => document.getElementById('cert-source').textContent === 'Uploaded by an installer');
      check((await text('#cert-issuer')).includes(testCaCn), `issuer "${await text('#cert-issuer')}"`);
      await open('certificate');
      check(await visible('#restore'), 'restore section hidden after upload');
      check(await visible('#ca-uploaded-note'), 'no note that cacert.crt does not cover the uploaded certificate');
      await shot('05-uploaded.png');
    });

    await step('after reload: no certificate error, served by the test CA, viewer says Uploaded', async () => {
      await tlsCheck(browser, testCaCn);
      const res = await page.reload({ waitUntil: 'load' });
      check(res && res.ok() && await res.securityDetails(), 'reload not a trusted https load');
      await ready();
      check(await text('#cert-source') === 'Uploaded by an installer', `source "${await text('#cert-source')}"`);
      check((await text('#cert-issuer')).includes(testCaCn), 'issuer is not the test CA');
      check(fingerprint(fs.readFileSync(signed)) === await text('#cert-sha'), 'viewer fingerprint differs from signed.pem');
      await shot('06-uploaded-reloaded.png');
    });

    await step('log out shows the login form; log in again', async () => {
      await page.click('#logout');
      await page.locator('#login').waitFor({ state: 'visible' });
      check(!(await visible('#upload')) && !(await visible('#restore')), 'change sections visible after logout');
      await shot('07-login.png');
      await page.fill('#login-pw', opt.password);
      await page.click('#login-submit');
      await page.locator('#restore').waitFor({ state: 'visible' });
    });

    await step('Restore asks for confirmation, then the camera\'s own certificate is back', async () => {
      await page.click('#restore-ask');
      await page.locator('#restore-confirm').waitFor({ state: 'visible' });
      check(await text('#cert-source') === 'Uploaded by an installer', 'restored before confirmation');
      await shot('08-restore-confirm.png');
      await page.click('#restore-yes');
      await page.waitForFunction(() => document.getElementById('cert-source').textContent === 'Made by this camera');
      check(!(await visible('#restore')), 'restore section still visible');
      await tlsCheck(browser, issuingCn);
      const res = await page.reload({ waitUntil: 'load' });
      check(res && res.ok() && await res.securityDetails(), 'reload not a trusted https load');
      await ready();
      check(await text('#cert-source') === 'Made by this camera', `source "${await text('#cert-source')}"`);
      check((await text('#cert-issuer')).includes(issuingCn), 'issuer is not the camera issuing CA');
      await shot('09-restored.png');
    });

    await step('automatic enrollment: a refused setting shows the server\'s sentence', async () => {
      await open('enrollment');
      await page.fill('#enroll-url', 'https://ca.site.home.arpa/acme/directory');
      await page.click('#enroll-submit');
      const msg = await page.locator('#enroll [role=alert]').textContent({ timeout: 10000 });
      check(/trust/.test(msg || ''), `message "${msg}"`);
    });

    await step('automatic enrollment with the test ACME server: the page shows it working, then the issued certificate is served', async () => {
      await page.fill('#enroll-url', opt.acmeDirectory);
      await page.fill('#enroll-trust', fs.readFileSync(opt.acmeTrust, 'utf8'));
      await page.uncheck('#enroll-alpn');
      await page.click('#enroll-submit');
      await page.waitForFunction(() => document.getElementById('cert-source').textContent.startsWith('Issued by the site'), null, { timeout: 60000 });
      check((await text('#enroll-last')).includes('issued a certificate'), `last attempt "${await text('#enroll-last')}"; state box: "${await text('#enroll-state')}", hidden ${await page.locator('#enroll-state').isHidden()}`);
      check(await visible('#enroll-stop'), 'no Stop button while enrollment is on');
      await shot('10-enrolled.png');
      const sd = await tlsCheck(browser, (await text('#cert-issuer')).replace(/^CN=/, ''));
      check(sd, 'no trusted connection with the enrolled certificate');
    });

    await step('802.1X: the state and its sentence (no supplicant here), enabling without a certificate refused', async () => {
      await open('dot1x');
      await page.locator('#dot1x-state').waitFor({ state: 'visible' });
      const st = await page.getAttribute('#dot1x-badge', 'data-state');
      check(st === 'no_supplicant' || st === 'off', `state ${st}`);
      check((await text('#dot1x-badge')).length > 1, 'no state label');
      check((await text('#dot1x-sentence')).length > 10, `sentence "${await text('#dot1x-sentence')}"`);
      check(await page.inputValue('#dot1x-if') === 'eth0', 'interface not eth0 by default');
      check(await page.inputValue('#dot1x-eapol') === '1', 'EAPOL version not 1 by default');
      await page.check('#dot1x-enabled');
      await page.fill('#dot1x-ca', caPem);
      const [answer] = await Promise.all([
        page.waitForResponse((r) => r.url().endsWith('/api/v1/dot1x') && r.request().method() === 'PUT'),
        page.click('#dot1x-submit'),
      ]);
      const refused = await answer.json();
      check(answer.status() === 409 && refused.error === 'dot1x_needs_certificate', `answer ${answer.status()} ${JSON.stringify(refused)}`);
      const msg = await page.locator('#dot1x-form [role=alert]').textContent({ timeout: 10000 });
      check((msg || '').trim() === refused.message, `shown "${msg}", the server said "${refused.message}"`);
      check(!(await visible('#dot1x-delete')), 'a delete button with no 802.1X certificate');
      await page.uncheck('#dot1x-enabled');
    });

    await step('802.1X: SCEP enrollment with an unreachable server shows its state and the failed attempt; Stop turns it off', async () => {
      check(await page.getAttribute('#dot1x-en-cn', 'placeholder') === 'the camera\'s host name', 'no host name placeholder for the CN');
      await page.fill('#dot1x-en-url', 'http://127.0.0.1:9/scep');
      await page.fill('#dot1x-en-challenge', 'x');
      const [answer] = await Promise.all([
        page.waitForResponse((r) => r.url().endsWith('/api/v1/dot1x/enrollment') && r.request().method() === 'PUT'),
        page.click('#dot1x-en-submit'),
      ]);
      const sent = answer.request().postDataJSON();
      check(answer.status() === 200, `answer ${answer.status()}`);
      check(JSON.stringify(sent) === '{"protocol":"scep","url":"http://127.0.0.1:9/scep","challenge":"x"}', `sent ${JSON.stringify(sent)}`);
      await page.locator('#dot1x-en-summary').filter({ hasText: 'Enrolling with SCEP at http://127.0.0.1:9/scep' }).waitFor();
      await page.locator('#dot1x-en-last.bad').waitFor({ timeout: 15000 });
      check(await visible('#dot1x-en-stop'), 'no Stop button while enrollment is on');
      await page.locator('#dot1x-en-form').screenshot({ path: path.join(opt.artifacts, '11-dot1x-scep.png') });
      await page.click('#dot1x-en-stop');
      await page.locator('#dot1x-en-summary').filter({ hasText: 'Automatic enrollment is off.' }).waitFor();
      check(!(await visible('#dot1x-en-stop')), 'Stop button still shown when off');
      check((await text('#dot1x-en-last')).length > 10, 'the last attempt is gone after Stop');
    });

    await step('802.1X: a request with a common name only, downloaded as certreq.pem; the back button returns to Enrollment', async () => {
      await page.fill('#dot1x-cn', 'UI walk camera 802.1X');
      await page.click('#dot1x-csr-submit');
      await page.locator('#dot1x-pending').waitFor({ state: 'visible', timeout: 20000 });
      check((await text('#dot1x-p-subject')).includes('UI walk camera 802.1X'), `pending "${await text('#dot1x-p-subject')}"`);
      await shot('11-dot1x.png');
      const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#dot1x-p-download')]);
      check(dl.suggestedFilename() === 'certreq.pem', `downloads as ${dl.suggestedFilename()}`);
      const to = path.join(opt.signerDir, 'dot1x-certreq.pem');
      await dl.saveAs(to);
      check(/UI walk camera 802\.1X/.test(run('openssl', ['req', '-in', to, '-noout', '-verify', '-subject'])), 'CSR subject lacks the CN');
      await page.goBack();
      await page.locator('#enroll').waitFor({ state: 'visible' });
      check(!(await visible('#dot1x')), '802.1X still shown after the back button');
    });

    await step('the security events list shows the login, the upload and the enrollment', async () => {
      await open('events');
      await page.click('#events-load');
      await page.locator('#events-list li').first().waitFor();
      const all = await text('#events-list');
      for (const word of ['Login', 'Certificate uploaded', 'Enrolled', 'Password set']) check(all.includes(word), `no "${word}" in the events`);
      await shot('12-events.png');
    });

    await step('Restore stops enrollment and the camera\'s own certificate is back', async () => {
      await open('certificate');
      await page.click('#restore-ask');
      await page.click('#restore-yes');
      await page.waitForFunction(() => document.getElementById('cert-source').textContent === 'Made by this camera');
      await tlsCheck(browser, issuingCn);
      await open('enrollment');
      check(!(await visible('#enroll-stop')), 'enrollment still on after restore');
      await open('certificate');
    });

    await step('phone width (360 px): no sideways scrolling', async () => {
      await page.setViewportSize({ width: 360, height: 800 });
      const wide = await page.evaluate(() => document.documentElement.scrollWidth);
      check(wide <= 360, `page is ${wide}px wide`);
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.screenshot({ path: path.join(opt.artifacts, '13-phone.png') });
      await page.locator('#ca').scrollIntoViewIfNeeded();
      await page.screenshot({ path: path.join(opt.artifacts, '14-phone-ca.png') });
      await open('dot1x');
      const wide2 = await page.evaluate(() => document.documentElement.scrollWidth);
      check(wide2 <= 360, `802.1X section is ${wide2}px wide`);
      await page.screenshot({ path: path.join(opt.artifacts, '15-phone-dot1x.png') });
    });

    // Last of the page's steps: if the answer never comes (a 401 with "WWW-Authenticate: Basic" makes
    // the browser open its own password dialog, which never closes in headless mode), the page stays busy.
    await step('a wrong password is refused with the server\'s message (no browser password dialog)', async () => {
      await page.click('#logout');
      await page.locator('#login').waitFor({ state: 'visible' });
      await page.fill('#login-pw', 'wrong-password');
      await page.click('#login-submit');
      try {
        await page.locator('#login [role=alert]').waitFor({ timeout: 5000 });
      } catch (_) {
        throw new Error('no answer to POST /api/v1/login within 5 s: does its 401 carry "WWW-Authenticate: Basic"? ' +
          'Browsers then show their own password dialog instead of the page\'s message');
      }
      const msg = await text('#login [role=alert]');
      check(msg.length > 10, `message "${msg}"`);
      await shot('16-login-refused.png');
    });

    await step('no script errors or CSP violations in the console', async () => {
      check(problems.length === 0, problems.join(' | '));
    });

    await step('the page reads only fields the server sends', async () => {
      check(contractMisses.size === 0, `fields the server does not have: ${[...contractMisses].join(', ')}`);
    });
  } finally {
    await browser.close();
    fs.rmSync(home, { recursive: true, force: true });
  }
}

main()
  .catch((e) => {
    if (!e || !e.fromStep) {
      failed++;
      console.log(`FAIL ${passed + failed}. walk stopped: ${e && e.message ? e.message.split('\n')[0] : e}`);
    }
  })
  .finally(() => {
    console.log(`${passed} passed, ${failed} failed`);
    console.log(`time ${((Date.now() - started) / 1000).toFixed(1)} s; screenshots in ${opt.artifacts}`);
    process.exitCode = failed ? 1 : 0;
  });
