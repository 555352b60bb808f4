#include "qr_png.hpp"

#include <png.h>
#include <qrencode.h>

#include <csetjmp>
#include <cstdint>
#include <memory>
#include <vector>

namespace vellum::sharing {

namespace {

struct Sink {
  std::string data;
  bool failed = false;
};

void write_to_sink(png_structp png, png_bytep bytes, png_size_t n) {
  auto* sink = static_cast<Sink*>(png_get_io_ptr(png));
  if (sink->failed) return;
  try {
    sink->data.append(reinterpret_cast<const char*>(bytes), n);
  } catch (...) {  // never let an exception cross libpng's C frames
    sink->failed = true;
  }
}

void flush_sink(png_structp) {}

// libpng reports errors by longjmp: nothing with a destructor lives in this
// frame after setjmp.
bool write_gray1(const uint8_t* pixels, png_uint_32 size, size_t stride, Sink* sink) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  if (!png) return false;
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_write_struct(&png, nullptr);
    return false;
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return false;
  }
  png_set_write_fn(png, sink, write_to_sink, flush_sink);
  png_set_IHDR(png, info, size, size, 1, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (png_uint_32 y = 0; y < size; ++y) png_write_row(png, pixels + y * stride);
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return !sink->failed;
}

}  // namespace

std::optional<std::string> qr_png(const std::string& text, int scale, int max_pixels) {
  std::unique_ptr<QRcode, void (*)(QRcode*)> qr(QRcode_encodeString8bit(text.c_str(), 0, QR_ECLEVEL_M),
                                                QRcode_free);
  if (!qr || scale < 1) return std::nullopt;
  constexpr int kQuietZone = 4;
  const int modules = qr->width + 2 * kQuietZone;
  if (modules > max_pixels / scale) return std::nullopt;
  const int size = modules * scale;
  const size_t stride = (static_cast<size_t>(size) + 7) / 8;
  // One bit per pixel, 1 = white (PNG grayscale); start all white.
  std::vector<uint8_t> pixels(stride * static_cast<size_t>(size), 0xff);
  for (int my = 0; my < qr->width; ++my)
    for (int mx = 0; mx < qr->width; ++mx) {
      if (!(qr->data[my * qr->width + mx] & 1)) continue;  // bit 0: dark module
      for (int dy = 0; dy < scale; ++dy) {
        const size_t y = static_cast<size_t>((my + kQuietZone) * scale + dy);
        for (int dx = 0; dx < scale; ++dx) {
          const size_t x = static_cast<size_t>((mx + kQuietZone) * scale + dx);
          pixels[y * stride + x / 8] &= static_cast<uint8_t>(~(0x80u >> (x % 8)));
        }
      }
    }
  Sink sink;
  if (!write_gray1(pixels.data(), static_cast<png_uint_32>(size), stride, &sink)) return std::nullopt;
  return std::move(sink.data);
}

}  // namespace vellum::sharing
