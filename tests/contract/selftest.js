#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// The contract checker's own test: fixture exchanges with known faults must be reported, and
// clean ones must not, so check.js cannot silently pass (CTest "contract: checker self-test").
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { checkExchanges, formatViolation, loadSdk } = require('./check.js');

const sdk = loadSdk();

// A QueryDeviceByStatus success as the real API gives it.
function byStatus(device) {
  return {
    action: 'QueryDeviceByStatus',
    client: 'iotfleet',
    params: { ProductKey: 'a1TrackerEm', Status: '1', PageSize: '50', CurrentPage: '1' },
    status: 200,
    code: '',
    response: {
      RequestId: 'R', Success: true, Total: 1, PageSize: 50, PageCount: 1, Page: 1,
      Data: { SimpleDeviceInfo: [device] },
    },
    file: 'fixture',
  };
}
const goodDevice = {
  ProductKey: 'a1TrackerEm', DeviceName: 'dev01', IotId: 'X', DeviceSecret: '***',
  Status: 'ONLINE', Nickname: '', GmtCreate: 'g', UtcCreate: 'u', GmtModified: 'g',
  UtcModified: 'u',
};

function lines(exchanges, table = []) {
  return checkExchanges(sdk, exchanges, table).map(formatViolation);
}

test('a clean exchange has no violation', () => {
  assert.deepEqual(lines([byStatus(goodDevice)], ['QueryDeviceByStatus']), []);
});

test('a field the model lacks is reported with its path', () => {
  const out = lines([byStatus({ ...goodDevice, DeviceId: 'X' })]);
  assert.deepEqual(out, [
    'QueryDeviceByStatus: Data.SimpleDeviceInfo[].DeviceId: not in the model ' +
      '(QueryDeviceByStatusResponseBodyDataSimpleDeviceInfo) [fixture]',
  ]);
});

test('a field of the wrong JSON type is reported', () => {
  const x = {
    action: 'QueryProduct', client: 'other', params: {}, status: 200, code: '',
    response: { RequestId: 'R', Success: true, Data: { ProductKey: 'p', ValidateType: 'WEAK' } },
  };
  assert.deepEqual(lines([x]), [
    'QueryProduct: Data.ValidateType: string where the model has number',
  ]);
});

test('a list where the model wraps it in an object is reported', () => {
  const x = byStatus(goodDevice);
  x.response.Data = [goodDevice]; // Aliyun's Data.SimpleDeviceInfo[] wrapper left out
  assert.match(lines([x]).join('\n'), /Data: array where the model has object/);
});

test('request parameters: unknown names, bad numbers and booleans, list flattening', () => {
  const x = {
    action: 'ListOTATaskByJob', client: 'iotfleet', status: 200, code: '',
    params: {
      JobId: 'j', PageSize: 'ten', 'DeviceNames.1': 'a', 'DeviceNames.x': 'b', Colour: 'red',
    },
    response: { RequestId: 'R', Success: true },
  };
  const out = lines([x]);
  assert.ok(out.includes('ListOTATaskByJob: request PageSize: "ten" is not a number'), out);
  assert.ok(out.includes('ListOTATaskByJob: request Colour: not in the model ' +
    '(ListOTATaskByJobRequest)'), out);
  assert.ok(out.includes('ListOTATaskByJob: request DeviceNames.x: x is not a list index ' +
    '(DeviceNames.N, N from 1)'), out);
  assert.equal(out.length, 3, out); // DeviceNames.1 and JobId are fine
  const c = {
    action: 'CancelOTATaskByJob', client: 'iotfleet', status: 200, code: '',
    params: { JobId: 'j', CancelQueuedTask: 'yes', CancelNotifiedTask: 'true' },
    response: { RequestId: 'R', Success: true },
  };
  assert.deepEqual(lines([c]), [
    'CancelOTATaskByJob: request CancelQueuedTask: "yes" is not a boolean',
  ]);
  const nested = {
    action: 'BatchCheckDeviceNames', client: 'iotfleet', status: 200, code: '',
    params: { ProductKey: 'p', 'DeviceNameList.1.DeviceName': 'd',
      'DeviceNameList.1.DeviceNickname': 'n', 'DeviceNameList.2.Nick': 'x' },
    response: { RequestId: 'R', Success: true },
  };
  assert.deepEqual(lines([nested]), [
    'BatchCheckDeviceNames: request DeviceNameList.N.Nick: not in the model ' +
      '(BatchCheckDeviceNamesRequestDeviceNameList)',
  ]);
});

test("parameters of other senders (the tests' curl) are not held to the model", () => {
  const x = byStatus(goodDevice);
  x.client = 'other';
  x.params.Bogus = '1';
  assert.deepEqual(lines([x]), []);
});

test('gateway errors are not checked, business errors are', () => {
  const gateway = {
    action: 'QueryDevice', client: 'iotfleet', params: {}, status: 400, code: 'Throttling.User',
    response: { RequestId: 'R', HostId: 'h', Code: 'Throttling.User', Message: 'm', Recommend: 'r' },
  };
  const business = {
    action: 'QueryDevice', client: 'iotfleet', params: {}, status: 200,
    code: 'iot.device.NotExistedDevice',
    response: { RequestId: 'R', Success: false, Code: 'c', ErrorMessage: 'm', Extra: 1 },
  };
  assert.deepEqual(lines([gateway, business]), [
    'QueryDevice: Extra: not in the model (QueryDeviceResponseBody)',
  ]);
});

test('coverage: an Action without a recorded success, and one without a model', () => {
  const failed = byStatus(goodDevice);
  failed.code = 'iot.prod.NotExistedProduct';
  failed.response = { RequestId: 'R', Success: false, Code: 'x', ErrorMessage: 'm' };
  const out = lines([failed], ['QueryDeviceByStatus', 'NoSuchAction']);
  assert.ok(out.includes('QueryDeviceByStatus: (coverage): served by the emulator, but no test ' +
    'recorded a success answer'), out);
  assert.ok(out.includes('NoSuchAction: (action): the emulator serves it, but the SDK has no ' +
    'NoSuchActionRequest'), out);
  const sent = { action: 'MadeUpAction', client: 'iotfleet', params: {}, status: 404,
    code: 'InvalidAction.NotFound', response: {} };
  assert.ok(lines([sent]).includes('MadeUpAction: (action): iotfleet sends it, but the SDK has ' +
    'no MadeUpActionRequest'));
});

test('the command: violations exit 1, no recordings exit 2, clean exit 0', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'contract-selftest-'));
  try {
    const actions = path.join(dir, 'actions.txt');
    fs.writeFileSync(actions, 'QueryDeviceByStatus\n');
    const rec = path.join(dir, 'rec');
    fs.mkdirSync(rec);
    const run = () => spawnSync(process.execPath, [path.join(__dirname, 'check.js'),
      '--actions', actions, rec], { encoding: 'utf8' });
    let r = run();
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /no recorded exchanges/);
    fs.writeFileSync(path.join(rec, 'test_x.abc123.ndjson'),
      JSON.stringify(byStatus({ ...goodDevice, LastOnlineTime: 't' })) + '\n');
    r = run();
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /^QueryDeviceByStatus: Data\.SimpleDeviceInfo\[\]\.LastOnlineTime: not in the model .*\[test_x\]$/m);
    assert.match(r.stdout, /1 violations$/m);
    fs.writeFileSync(path.join(rec, 'test_x.abc123.ndjson'),
      JSON.stringify(byStatus(goodDevice)) + '\n');
    r = run();
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /checked 1 exchanges .* 0 violations$/m);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
