// Build and sign the layer-1 announcement Move call with the official TypeScript SDK,
// offline, and print transaction bytes, signature and digest as one JSON line.
// Input (JSON on stdin): {"seed": hex32, "package": 0x.., "session", "peer", "round",
// "entry", "binding": hex, "gas": {"objectId", "version", "digest"}, "price", "budget"}
// Run in the cache directory (the SDK is resolved from the working directory).
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";

const require = createRequire(process.cwd() + "/");
const { Transaction, TransactionDataBuilder } = require("@iota/iota-sdk/transactions");
const { Ed25519Keypair } = require("@iota/iota-sdk/keypairs/ed25519");

const input = JSON.parse(readFileSync(0, "utf8"));
const keypair = Ed25519Keypair.fromSecretKey(Uint8Array.from(Buffer.from(input.seed, "hex")));
const tx = new Transaction();
tx.setSender(keypair.getPublicKey().toIotaAddress());
tx.setGasPrice(input.price);
tx.setGasBudget(input.budget);
tx.setGasPayment([input.gas]);
tx.moveCall({
  target: `${input.package}::announcements::announce`,
  arguments: [
    tx.pure.string(input.session),
    tx.pure.string(input.peer),
    tx.pure.u32(input.round),
    tx.pure.string(input.entry),
    tx.pure.vector("u8", Array.from(Buffer.from(input.binding, "hex"))),
  ],
});
const bytes = await tx.build();
const { signature } = await keypair.signTransaction(bytes);
process.stdout.write(JSON.stringify({
  sender: keypair.getPublicKey().toIotaAddress(),
  tx_bytes: Buffer.from(bytes).toString("base64"),
  signature,
  digest: TransactionDataBuilder.getDigestFromBytes(bytes),
}) + "\n");
