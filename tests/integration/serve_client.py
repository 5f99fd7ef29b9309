# SPDX-License-Identifier: MIT
"""A device's side of `iotfleet serve`, written from docs/enrollment.md alone (not iotfleet's code).

  body KEY FIELD=VALUE...      the signed form body (hmacsha256 unless signMethod=... is given)
  batch URL CAFILE PK SCHEME SECRET DEVICES_CSV WORKERS
      DEVICES_CSV lines "device_name,imei[,url]" (a url of its own overrides URL): every device
      asks at once (WORKERS threads, TLS
      verified against CAFILE), one JSON line per device: device_name, imei, code, secret (code
      "error" and the error when the connection failed).
      SCHEME product: the sign's key is SECRET; device-key: HMAC-SHA256(SECRET, DN)[:32].
"""
import concurrent.futures
import hashlib
import hmac
import http.client
import json
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request


def body(key, fields, method="hmacsha256"):
    algorithm = {"hmacsha256": hashlib.sha256, "hmacsha1": hashlib.sha1, "hmacmd5": hashlib.md5}
    content = "".join(name + fields[name] for name in sorted(fields))
    sign = hmac.new(key.encode(), content.encode(), algorithm[method.lower()]).hexdigest().upper()
    return urllib.parse.urlencode({**fields, "sign": sign, "signMethod": method})


def device_key(group, name):
    return hmac.new(group.encode(), name.encode(), hashlib.sha256).hexdigest()[:32]


def post(url, context, data):
    request = urllib.request.Request(url + "/auth/register/device", data=data.encode(),
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(request, context=context, timeout=30) as answer:
            return json.loads(answer.read())
    except urllib.error.HTTPError as error:  # 429, 503: the answer is in the body too
        return json.loads(error.read())


def main(argv):
    if argv[1] == "body":
        fields = dict(arg.split("=", 1) for arg in argv[3:])
        method = fields.pop("signMethod", "hmacsha256")
        print(body(argv[2], fields, method))
        return 0
    url, cafile, pk, scheme, secret, devices, workers = argv[2:9]
    context = ssl.create_default_context(cafile=cafile)
    rows = [line.strip().split(",") for line in open(devices) if line.strip()]

    def ask(row):
        name, imei = row[0], row[1]
        target = row[2] if len(row) > 2 else url
        key = secret if scheme == "product" else device_key(secret, name)
        fields = {"productKey": pk, "deviceName": name, "random": "r" + imei[-6:], "imei": imei}
        try:
            answer = post(target, context, body(key, fields))
        except (OSError, http.client.HTTPException, ValueError) as error:  # the server is gone
            return {"device_name": name, "imei": imei, "code": "error", "error": str(error)}
        return {"device_name": name, "imei": imei, "code": answer["code"], "url": target,
                "secret": answer.get("data", {}).get("deviceSecret", "")}

    with concurrent.futures.ThreadPoolExecutor(max_workers=int(workers)) as pool:
        for result in pool.map(ask, rows):
            print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
