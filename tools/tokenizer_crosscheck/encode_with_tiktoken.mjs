// Encodes a UTF-8 file with js-tiktoken's r50k_base (GPT-2's encoding; the
// reference data's README says it agrees with Hugging Face tokenizers) and
// writes {"source", "text", "ids"} as JSON: a golden made by an independent
// implementation.
//
//   npm install js-tiktoken@1.0.21
//   node encode_with_tiktoken.mjs IN.txt OUT.golden.json
import { Tiktoken } from "js-tiktoken/lite";
import r50k from "js-tiktoken/ranks/r50k_base";
import fs from "fs";

const text = fs.readFileSync(process.argv[2], "utf8");
const ids = new Tiktoken(r50k).encode(text, "all");
fs.writeFileSync(process.argv[3], JSON.stringify({ source: "js-tiktoken 1.0.21 r50k_base", text, ids }));
