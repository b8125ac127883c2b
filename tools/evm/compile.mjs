// Compile the Announcements contract with the pinned solcjs and print the artifact
// (ABI, bytecode, compiler version and settings) as JSON on stdout.
// Usage: node compile.mjs PATH/Announcements.sol   (run in the rig's cache directory:
// solc is resolved from the working directory's node_modules)
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(process.cwd() + "/");
const solc = require("solc");
const source = readFileSync(process.argv[2], "utf8");
const settings = {
  evmVersion: "paris",
  optimizer: { enabled: true, runs: 200 },
  outputSelection: { "*": { Announcements: ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
};
const input = { language: "Solidity", sources: { "Announcements.sol": { content: source } }, settings };
const output = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (output.errors || []).filter((e) => e.severity === "error");
if (errors.length) {
  for (const e of errors) console.error(e.formattedMessage);
  process.exit(1);
}
const contract = output.contracts["Announcements.sol"].Announcements;
const artifact = {
  contractName: "Announcements",
  compiler: `solc ${solc.version()}`,
  settings: { evmVersion: settings.evmVersion, optimizer: settings.optimizer },
  abi: contract.abi,
  bytecode: "0x" + contract.evm.bytecode.object,
  deployedBytecode: "0x" + contract.evm.deployedBytecode.object,
};
process.stdout.write(JSON.stringify(artifact, null, 2) + "\n");
