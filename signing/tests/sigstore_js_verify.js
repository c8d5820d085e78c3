// Verifies a Sigstore bundle with a public key, offline, through
// sigstore-js (@sigstore/bundle, @sigstore/verify, the npm package
// `sigstore`'s own verifier): the key is selected by the bundle's hint, and
// the transparency-log, CT-log and timestamp thresholds are 0 (a bundle
// made offline has none). An empty trusted root stands in for the TUF one,
// which needs the network.
//
// usage: node sigstore_js_verify.js NODE_MODULES BUNDLE.json PUBLIC.pem
// prints "verified" and exits 0, or prints the error and exits 1.
const [modules, bundlePath, keyPath] = process.argv.slice(2);
const path = require('path');
const fs = require('fs');
const req = (name) => require(path.join(modules, name));
const { bundleFromJSON } = req('@sigstore/bundle');
const { Verifier, toSignedEntity, toTrustMaterial } = req('@sigstore/verify');
const { crypto } = req('@sigstore/core');

const bundle = JSON.parse(fs.readFileSync(bundlePath, 'utf8'));
const pem = fs.readFileSync(keyPath, 'utf8');
const trustedRoot = {
  mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
  tlogs: [], certificateAuthorities: [], ctlogs: [], timestampAuthorities: [],
};
const keyFinder = (hint) => ({ publicKey: crypto.createPublicKey(pem), validFor: () => true });
try {
  const verifier = new Verifier(toTrustMaterial(trustedRoot, keyFinder), {
    tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0,
  });
  verifier.verify(toSignedEntity(bundleFromJSON(bundle)), {});
  console.log('verified');
} catch (err) {
  console.log(`${err.code || 'ERROR'}: ${err.message}`);
  process.exit(1);
}
