// Decodes the QR code in a PNG file with independent implementations (pngjs
// to read the image, jsQR to find and decode the code) and prints
// {"width","height","text"} as JSON. Exit 1 when no code is found.
// Used by the sharing plugin's share-link QR test.
//
//   node qr-decode.mjs file.png
import { readFileSync } from "node:fs";
import jsQR from "jsqr";
import { PNG } from "pngjs";

const png = PNG.sync.read(readFileSync(process.argv[2]));
const code = jsQR(new Uint8ClampedArray(png.data.buffer, png.data.byteOffset, png.data.length), png.width, png.height);
if (!code) {
  console.error("no QR code found");
  process.exit(1);
}
console.log(JSON.stringify({ width: png.width, height: png.height, text: code.data }));
