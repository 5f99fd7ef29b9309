#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// The API contract test: every OpenAPI exchange the integration tests recorded from
// `iotfleet-sim cloud --exchange-log` (NDJSON, sim/cloud_exchange.hpp) is checked against
// Alibaba's generated SDK, @alicloud/iot20180120 (pinned in package.json), whose
// <Action>Request and <Action>ResponseBody model classes say which wire names exist and with
// which types (static names(): property -> wire name, types(): property -> type).
//
//   (a) every parameter iotfleet's client sent exists in <Action>Request (a list flattened as
//       Name.N or Name.N.Field, an object as Name.Field) and its value fits the type;
//   (b) every field of every answer the emulator gave without an error Code (HTTP 200) exists in
//       the <Action>ResponseBody model tree with that JSON type; business errors too;
//   (c) every Action of the emulator's table has a recorded success, and every Action the client
//       sent has its models.
//
// Usage: node check.js --sim PATH/iotfleet-sim DIR...   (or --actions FILE: one Action a line)
// Prints each violation as "Action: path: problem" and exits 1 when there is any, 2 when
// nothing was recorded or the arguments are wrong. docs/cloud-emulator.md, "Contract test".
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

function loadSdk() {
  try {
    return require('@alicloud/iot20180120');
  } catch (e) {
    throw new Error(
      `cannot load @alicloud/iot20180120 from ${path.join(__dirname, 'node_modules')}: ` +
        `${e.message.split('\n')[0]} (run scripts/setup.sh, or npm ci in tests/contract)`);
  }
}

// ---- models -------------------------------------------------------------------------------

function isModel(type) {
  return typeof type === 'function' && typeof type.names === 'function';
}

function typeName(type) {
  if (typeof type === 'string') return type;
  if (isModel(type)) return `object ${type.name}`;
  if (type && type.type === 'array') return `array of ${typeName(type.itemType)}`;
  if (type && type.type === 'map') return `map of ${typeName(type.valueType)}`;
  return JSON.stringify(type);
}

// wire name -> type of a model class.
function fields(model) {
  const names = model.names();
  const types = model.types();
  const out = new Map();
  for (const prop of Object.keys(names)) out.set(names[prop], types[prop]);
  return out;
}

function jsonType(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value; // string, number, boolean, object
}

// ---- (b) answers ------------------------------------------------------------------------

// Walks `value` against `type`, calling report(path, problem) for each misfit.
function checkValue(value, type, at, report) {
  if (type === 'any') return;
  const got = jsonType(value);
  if (typeof type === 'string') {
    if (got !== type) report(at, `${got} where the model has ${type}`);
    return;
  }
  if (isModel(type)) {
    if (got !== 'object') {
      report(at, `${got} where the model has ${typeName(type)}`);
      return;
    }
    const known = fields(type);
    for (const [key, member] of Object.entries(value)) {
      const where = at ? `${at}.${key}` : key;
      if (!known.has(key)) {
        report(where, `not in the model (${type.name})`);
        continue;
      }
      checkValue(member, known.get(key), where, report);
    }
    return;
  }
  if (type && type.type === 'array') {
    if (got !== 'array') {
      report(at, `${got} where the model has ${typeName(type)}`);
      return;
    }
    value.forEach((item, i) => checkValue(item, type.itemType, `${at}[${i}]`, report));
    return;
  }
  if (type && type.type === 'map') {
    if (got !== 'object') {
      report(at, `${got} where the model has ${typeName(type)}`);
      return;
    }
    for (const [key, member] of Object.entries(value)) {
      checkValue(member, type.valueType, `${at}.${key}`, report);
    }
    return;
  }
  report(at, `the model's type ${JSON.stringify(type)} is not understood by check.js`);
}

// ---- (a) requests -----------------------------------------------------------------------

function fitsScalar(value, type) {
  switch (type) {
    case 'number':
      return /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(value);
    case 'boolean':
      return value === 'true' || value === 'false';
    case 'string':
    case 'any':
      return true;
    default:
      return false;
  }
}

// Problems of one flattened parameter `name`=`value` against the Request model: the name's
// segments walk the model (a list takes an index N >= 1, an object or map a field).
function checkParam(request, shrink, name, value) {
  const segments = name.split('.');
  let type = request;
  let at = '';
  for (let i = 0; i < segments.length; ++i) {
    const seg = segments[i];
    const shown = at ? `${at}.${seg}` : seg;
    if (isModel(type)) {
      const known = fields(type);
      if (!known.has(seg)) return `not in the model (${type.name})`;
      type = known.get(seg);
      at = shown;
      continue;
    }
    if (type && type.type === 'array') {
      if (!/^[1-9]\d*$/.test(seg)) return `${seg} is not a list index (${at}.N, N from 1)`;
      type = type.itemType;
      at = `${at}.N`;
      continue;
    }
    if (type && type.type === 'map') {
      type = type.valueType;
      at = shown;
      continue;
    }
    return `${at} is ${typeName(type)}: it takes no .${segments.slice(i).join('.')}`;
  }
  if (typeof type === 'string') {
    return fitsScalar(value, type) ? null : `${JSON.stringify(value)} is not a ${type}`;
  }
  // A whole list / object / map sent as one value: the SDK sends those as JSON text only where
  // its <Action>ShrinkRequest has the name as a string.
  if (segments.length === 1 && shrink && fields(shrink).get(name) === 'string') {
    try {
      JSON.parse(value);
      return null;
    } catch {
      return `${JSON.stringify(value)} is not JSON (the SDK sends ${name} as JSON text)`;
    }
  }
  return `one value where the model has ${typeName(type)}`;
}

// ---- the exchanges ----------------------------------------------------------------------

function isSuccess(x) {
  return x.status === 200 && !x.code && x.response && typeof x.response === 'object' &&
    x.response.Success !== false && !('Code' in x.response && x.response.Code);
}

function isBusinessError(x) {
  return x.status === 200 && x.response && typeof x.response === 'object' && !isSuccess(x);
}

// Violations over all exchanges: [{action, path, problem, count, files}] (one entry per action,
// path shape and problem; list indexes shown as []).
function checkExchanges(sdk, exchanges, tableActions) {
  const found = new Map();
  const add = (action, where, problem, file) => {
    const shape = where.replace(/\[\d+\]/g, '[]').replace(/\.\d+(?=\.|$)/g, '.N');
    const key = `${action}\u0000${shape}\u0000${problem}`;
    let v = found.get(key);
    if (!v) {
      v = { action, path: shape, problem, count: 0, files: new Set() };
      found.set(key, v);
    }
    v.count += 1;
    if (file) v.files.add(file);
  };
  const successes = new Map();
  const clientActions = new Set();
  for (const x of exchanges) {
    const action = x.action || '(no Action)';
    const request = sdk[`${action}Request`];
    const shrink = sdk[`${action}ShrinkRequest`];
    const body = sdk[`${action}ResponseBody`];
    if (x.client === 'iotfleet') {
      clientActions.add(action);
      if (isModel(request)) {
        for (const [name, value] of Object.entries(x.params || {})) {
          const problem = checkParam(request, shrink, name, String(value));
          if (problem) add(action, `request ${name}`, problem, x.file);
        }
      }
    }
    if (isSuccess(x)) successes.set(action, (successes.get(action) || 0) + 1);
    if ((isSuccess(x) || isBusinessError(x)) && isModel(body)) {
      checkValue(x.response, body, '', (where, problem) => add(action, where, problem, x.file));
    }
  }
  for (const action of clientActions) {
    for (const suffix of ['Request', 'ResponseBody']) {
      if (!isModel(sdk[action + suffix])) {
        add(action, '(action)', `iotfleet sends it, but the SDK has no ${action}${suffix}`);
      }
    }
  }
  for (const action of tableActions) {
    for (const suffix of ['Request', 'ResponseBody']) {
      if (!isModel(sdk[action + suffix])) {
        add(action, '(action)', `the emulator serves it, but the SDK has no ${action}${suffix}`);
      }
    }
    if (!successes.has(action)) {
      add(action, '(coverage)', 'served by the emulator, but no test recorded a success answer');
    }
  }
  return [...found.values()].sort((a, b) =>
    a.action.localeCompare(b.action) || a.path.localeCompare(b.path) ||
    a.problem.localeCompare(b.problem));
}

function formatViolation(v) {
  const where = v.files.size ? ` [${[...v.files].sort().join(', ')}]` : '';
  const times = v.count > 1 ? ` (${v.count} times)` : '';
  return `${v.action}: ${v.path}: ${v.problem}${times}${where}`;
}

// Every exchange of every *.ndjson file in the directories; a bad line is an error.
function readRecordings(dirs) {
  const exchanges = [];
  const files = [];
  for (const dir of dirs) {
    if (!fs.existsSync(dir)) continue;
    for (const name of fs.readdirSync(dir).filter((n) => n.endsWith('.ndjson')).sort()) {
      files.push(name);
      const lines = fs.readFileSync(path.join(dir, name), 'utf8').split('\n');
      lines.forEach((line, i) => {
        if (!line.trim()) return;
        let x;
        try {
          x = JSON.parse(line);
        } catch (e) {
          throw new Error(`${path.join(dir, name)}:${i + 1}: not JSON: ${e.message}`);
        }
        x.file = name.replace(/\.[^.]+\.ndjson$/, '');
        exchanges.push(x);
      });
    }
  }
  return { exchanges, files };
}

function main(argv) {
  const dirs = [];
  let actions = null;
  for (let i = 0; i < argv.length; ++i) {
    if (argv[i] === '--sim') {
      const out = execFileSync(argv[++i], ['cloud', '--list-actions'], { encoding: 'utf8' });
      actions = out.split('\n').filter(Boolean);
    } else if (argv[i] === '--actions') {
      actions = fs.readFileSync(argv[++i], 'utf8').split('\n').filter(Boolean);
    } else {
      dirs.push(argv[i]);
    }
  }
  if (!actions || dirs.length === 0) {
    console.error('usage: node check.js (--sim IOTFLEET_SIM | --actions FILE) RECORDINGS_DIR...');
    return 2;
  }
  if (actions.length === 0) {
    console.error('check.js: the emulator listed no Actions');
    return 2;
  }
  const sdk = loadSdk();
  const { exchanges, files } = readRecordings(dirs);
  if (exchanges.length === 0) {
    console.error(
      `check.js: no recorded exchanges in ${dirs.join(', ')}: run the integration tests first ` +
        '(ctest -L integration; they record with IOT_EXCHANGE_DIR set)');
    return 2;
  }
  const violations = checkExchanges(sdk, exchanges, actions);
  for (const v of violations) console.log(formatViolation(v));
  const client = exchanges.filter((x) => x.client === 'iotfleet').length;
  console.log(
    `checked ${exchanges.length} exchanges (${client} from iotfleet) of ${files.length} ` +
      `emulator runs against @alicloud/iot20180120 ` +
      `${require('@alicloud/iot20180120/package.json').version}, ${actions.length} Actions: ` +
      `${violations.length} violations`);
  return violations.length ? 1 : 0;
}

module.exports = { checkExchanges, checkParam, checkValue, formatViolation, readRecordings, loadSdk };

if (require.main === module) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (e) {
    console.error(`check.js: ${e.message}`);
    process.exitCode = 2;
  }
}
