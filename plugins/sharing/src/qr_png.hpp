// QR codes for share links: libqrencode for the symbol, libpng for the image.
#pragma once

#include <optional>
#include <string>

namespace vellum::sharing {

// `text` as a QR code (error correction level M, byte mode) in a 1-bit
// grayscale PNG: `scale` pixels per module and a quiet zone of four modules
// on each side, as ISO/IEC 18004 asks. nullopt if the text does not fit a
// QR code or the image would be wider than max_pixels.
std::optional<std::string> qr_png(const std::string& text, int scale, int max_pixels = 4096);

}  // namespace vellum::sharing
