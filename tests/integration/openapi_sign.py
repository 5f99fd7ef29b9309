# SPDX-License-Identifier: MIT
# A signed Aliyun OpenAPI (RPC style, HMAC-SHA1) request body, for tests that talk to
# iotfleet-sim cloud directly: openapi_sign.py METHOD ACCESS_KEY_ID ACCESS_KEY_SECRET ACTION K=V...
import base64, datetime, hashlib, hmac, sys, urllib.parse, uuid
def enc(s):
    return urllib.parse.quote(s, safe="-_.~")
method, ak, sk, action = sys.argv[1:5]
p = dict(Action=action, Version="2018-01-20", Format="JSON", AccessKeyId=ak,
         SignatureMethod="HMAC-SHA1", SignatureVersion="1.0", SignatureNonce=str(uuid.uuid4()),
         Timestamp=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
p.update(a.split("=", 1) for a in sys.argv[5:])
canonical = "&".join(enc(k) + "=" + enc(v) for k, v in sorted(p.items()))
to_sign = method + "&" + enc("/") + "&" + enc(canonical)
p["Signature"] = base64.b64encode(
    hmac.new((sk + "&").encode(), to_sign.encode(), hashlib.sha1).digest()).decode()
print("&".join(enc(k) + "=" + enc(v) for k, v in sorted(p.items())))
