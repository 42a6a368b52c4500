// app.js - the dashboard's shell: hash router, token field, connection banner.
//   #/runs[?state=&kind=&sweep=]   the runs table
//   #/runs/{id}[?x=time]           one run
//   #/sweeps[?state=&kind=&q=]     the sweeps table
//   #/sweeps/{id}[?y=]             one sweep
//   #/compare?ids=r-1,r-2[&x=time] runs side by side

import {conn, onConn, setToken} from './api.js';
import {h, fill} from './util.js';
import * as runsPage from './runs.js';
import * as runPage from './run.js';
import * as sweepPage from './sweep.js';
import * as sweepsPage from './sweeps.js';
import * as comparePage from './compare.js';

const main = document.getElementById('main');
const banner = document.getElementById('banner');
const tokenIn = document.getElementById('token');
const tokenForm = document.getElementById('token-form');
const tokenState = document.getElementById('token-state');

let unmount = null;

function route() {
  const hash = location.hash.replace(/^#/, '') || '/runs';
  const [path, query = ''] = hash.split('?');
  const params = new URLSearchParams(query);
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  unmount?.();
  unmount = null;
  window.scrollTo(0, 0);
  const section = parts[0] === 'compare' ? 'runs' : parts[0] || 'runs';
  for (const a of document.querySelectorAll('nav a')) a.classList.toggle('on', a.getAttribute('href') === '#/' + section);
  if (parts[0] === 'runs' && parts.length === 1) {
    document.title = 'Runs · vvd';
    unmount = runsPage.mount(main, params);
  } else if (parts[0] === 'runs' && parts.length === 2) {
    document.title = `${parts[1]} · vvd`;
    unmount = runPage.mount(main, params, parts[1]);
  } else if (parts[0] === 'sweeps' && parts.length === 1) {
    document.title = 'Sweeps · vvd';
    unmount = sweepsPage.mount(main, params);
  } else if (parts[0] === 'compare' && parts.length === 1) {
    document.title = 'Compare · vvd';
    unmount = comparePage.mount(main, params);
  } else if (parts[0] === 'sweeps' && parts.length === 2) {
    document.title = `${parts[1]} · vvd`;
    unmount = sweepPage.mount(main, params, parts[1]);
  } else {
    document.title = 'vvd';
    fill(main, h('h1', {}, 'Not found'), h('p', {}, 'No page ', h('code', {}, location.hash), '. ', h('a', {href: '#/runs'}, 'Runs')));
  }
}

function showBanner() {
  if (!conn.online) {
    banner.hidden = false;
    banner.className = 'banner offline';
    fill(banner, h('b', {}, `vvd at ${location.origin} is unreachable.`),
      ' Retrying every 2 s; the page resumes by itself when the daemon is back.');
  } else if (conn.auth !== 'ok') {
    banner.hidden = false;
    banner.className = 'banner auth';
    fill(banner, h('b', {}, conn.auth === 'refused' ? 'The token was refused (401).' : 'This vvd requires a bearer token (401).'),
      ' Enter it in the Token field at the top right and press Save; it is kept in this browser (localStorage).');
    tokenForm.classList.add('attention');
  } else {
    banner.hidden = true;
    fill(banner);
  }
  if (conn.auth === 'ok') tokenForm.classList.remove('attention');
  tokenState.textContent = conn.token ? 'set' : 'none';
  tokenState.className = conn.token ? 'tok set' : 'tok';
}

tokenIn.value = conn.token;
tokenForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  setToken(tokenIn.value);
});
document.getElementById('token-clear').addEventListener('click', () => {
  tokenIn.value = '';
  setToken('');
});

onConn((c, what) => {
  showBanner();
  if (what === 'token') route(); // everything again, with the new token
  if (what === 'auth' && c.auth !== 'ok') tokenIn.focus();
});
window.addEventListener('hashchange', route);
showBanner();
route();
