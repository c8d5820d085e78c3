#!/usr/bin/env python3
"""An independent cosign checker and signer, written from cosign's and
go-securesystemslib's specifications on Python's `cryptography` and
`pynacl` (libsodium): no code shared with openshell-signing.

Subcommands (paths are files; passphrases come from $PASS):
  verify-sig PUB PAYLOAD SIG_B64_FILE    ECDSA P-256/SHA-256 over the payload
  verify-dsse PUB ENVELOPE               DSSE v1 over PAE(type, payload)
  decrypt-key KEY                        open cosign's encrypted key, print its public key PEM
  gen-key KEY PUB                        write a fresh cosign-format key pair
  sign KEY PAYLOAD                       print base64 DER signature (random nonce)
  sign-dsse KEY TYPE PAYLOAD             print a DSSE envelope
  verify-batch PUB CASES                 print a JSON list: which cases verify
  sign-batch KEY CASES                   print a JSON list of base64 signatures
Exit 0 on success; on a failed check print the reason and exit 1.
"""
import base64
import hashlib
import json
import os
import sys

import nacl.secret
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

LABELS = ("ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY")
SCRYPT_OK = {(32768, 8, 1), (65536, 8, 1), (131072, 8, 1)}


def pem_body(text, label):
    begin, end = f"-----BEGIN {label}-----", f"-----END {label}-----"
    start, stop = text.index(begin) + len(begin), text.index(end)
    return base64.b64decode("".join(text[start:stop].split()), validate=True)


def load_pub(path):
    key = serialization.load_pem_public_key(open(path, "rb").read())
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        sys.exit("public key is not ECDSA P-256")
    return key


def decrypt_key(path, passphrase):
    text = open(path).read()
    label = next(l for l in LABELS if f"-----BEGIN {l}-----" in text)
    env = json.loads(pem_body(text, label))
    kdf, cipher = env["kdf"], env["cipher"]
    assert kdf["name"] == "scrypt" and cipher["name"] == "nacl/secretbox", env
    params = kdf["params"]
    n, r, p = params["N"], params["r"], params["p"]
    assert (n, r, p) in SCRYPT_OK, params
    key = hashlib.scrypt(passphrase, salt=base64.b64decode(kdf["salt"]), n=n, r=r, p=p,
                         maxmem=256 * 1024 * 1024, dklen=32)
    box = nacl.secret.SecretBox(key)
    der = box.decrypt(base64.b64decode(env["ciphertext"]), base64.b64decode(cipher["nonce"]))
    priv = serialization.load_der_private_key(der, password=None)
    assert isinstance(priv, ec.EllipticCurvePrivateKey) and priv.curve.name == "secp256r1"
    return priv


def load_priv(path, passphrase):
    text = open(path).read()
    if any(f"-----BEGIN {l}-----" in text for l in LABELS):
        return decrypt_key(path, passphrase)
    return serialization.load_pem_private_key(text.encode(), password=None)


def pub_pem(key):
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def pae(ptype, body):
    t = ptype.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(body), body)


def verify(pub, sig, message, what):
    try:
        pub.verify(sig, message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        print(f"{what}: signature does not verify")
        sys.exit(1)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    passphrase = os.environb.get(b"PASS", b"")
    if cmd == "verify-sig":
        pub, payload = load_pub(args[0]), open(args[1], "rb").read()
        sig = base64.b64decode(open(args[2]).read().strip(), validate=True)
        verify(pub, sig, payload, "simple signing")
        doc = json.loads(payload)
        assert doc["critical"]["type"] == "cosign container image signature", doc
        print(json.dumps(doc["critical"]))
    elif cmd == "verify-dsse":
        pub, env = load_pub(args[0]), json.load(open(args[1]))
        body = base64.b64decode(env["payload"], validate=True)
        sig = base64.b64decode(env["signatures"][0]["sig"], validate=True)
        verify(pub, sig, pae(env["payloadType"], body), "dsse")
        sys.stdout.write(body.decode())
    elif cmd == "decrypt-key":
        print(pub_pem(decrypt_key(args[0], passphrase)), end="")
    elif cmd == "gen-key":
        priv = ec.generate_private_key(ec.SECP256R1())
        der = priv.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
        salt, nonce = os.urandom(32), os.urandom(24)
        key = hashlib.scrypt(passphrase, salt=salt, n=32768, r=8, p=1, maxmem=256 * 1024 * 1024, dklen=32)
        sealed = nacl.secret.SecretBox(key).encrypt(der, nonce).ciphertext
        env = {"kdf": {"name": "scrypt", "params": {"N": 32768, "r": 8, "p": 1},
                       "salt": base64.b64encode(salt).decode()},
               "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
               "ciphertext": base64.b64encode(sealed).decode()}
        body = base64.b64encode(json.dumps(env, separators=(",", ":")).encode()).decode()
        lines = "\n".join(body[i:i + 64] for i in range(0, len(body), 64))
        with open(args[0], "w") as f:
            f.write(f"-----BEGIN {LABELS[0]}-----\n{lines}\n-----END {LABELS[0]}-----\n")
        with open(args[1], "w") as f:
            f.write(pub_pem(priv))
    elif cmd == "sign":
        priv = load_priv(args[0], passphrase)
        sig = priv.sign(open(args[1], "rb").read(), ec.ECDSA(hashes.SHA256()))
        print(base64.b64encode(sig).decode())
    elif cmd == "sign-dsse":
        priv, ptype, body = load_priv(args[0], passphrase), args[1], open(args[2], "rb").read()
        sig = priv.sign(pae(ptype, body), ec.ECDSA(hashes.SHA256()))
        print(json.dumps({"payloadType": ptype, "payload": base64.b64encode(body).decode(),
                          "signatures": [{"keyid": "", "sig": base64.b64encode(sig).decode()}]}))
    elif cmd == "verify-batch":
        # [{"kind": "sig"|"dsse", "payload": B64, "sig": B64, "payloadType": T}] -> [bool]
        pub, out = load_pub(args[0]), []
        for case in json.load(open(args[1])):
            body, sig = base64.b64decode(case["payload"]), base64.b64decode(case["sig"])
            message = pae(case["payloadType"], body) if case["kind"] == "dsse" else body
            try:
                pub.verify(sig, message, ec.ECDSA(hashes.SHA256()))
                out.append(True)
            except InvalidSignature:
                out.append(False)
        print(json.dumps(out))
    elif cmd == "sign-batch":
        # [{"kind": ..., "payload": B64, "payloadType": T}] -> [B64 signature]
        priv, out = load_priv(args[0], passphrase), []
        for case in json.load(open(args[1])):
            body = base64.b64decode(case["payload"])
            message = pae(case["payloadType"], body) if case["kind"] == "dsse" else body
            out.append(base64.b64encode(priv.sign(message, ec.ECDSA(hashes.SHA256()))).decode())
        print(json.dumps(out))
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
