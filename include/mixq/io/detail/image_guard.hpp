#pragma once
// Checks run on an image's bytes before stb_image sees them, against defects
// of Debian's stb_image 2.27 (libstb-dev) that a crafted file reaches. Each was
// found by fuzz/fuzz_image.cpp under AddressSanitizer / UBSan (the inputs are
// in fuzz/regressions/image/) and is fixed upstream in 2.28:
//
//  - JPEG: a Huffman table (DHT segment) whose 16 code counts sum to more than
//    256 is built into a 257-entry size list and a 256-entry value list
//    without a check: up to 4,080 bytes are written past them (heap
//    corruption; upstream stb issues 1289 and 1291). More than 256 codes in
//    one table is invalid JPEG (ITU T.81 B.2.4.2: at most 256 symbols), so
//    refusing it loses no image.
//  - JPEG: a scan that uses a Huffman or quantization table no DHT or DQT
//    segment defined before it is decoded with stb_image's uninitialized
//    tables: a garbage code offset indexes the 256-entry value list out of
//    bounds (issue 1289), and garbage quantizers overflow the IDCT. JPEG
//    requires tables to be defined before the scan that uses them (T.81
//    B.2.4), so refusing this loses no image either.
//  - PNM: a binary PGM/PPM with a maximum value above 255 (16 bits a sample)
//    is converted with the 8-bit routine and read past its buffer; and header
//    numbers are accumulated in an int without a bound (signed overflow for a
//    width of 3333333333). mixq reads 8-bit PNM only, with header numbers up
//    to 2^24 (stb_image's own dimension limit).
//  - BMP: pixel rows the file does not hold are read as zeros (stbi__get8
//    gives 0 past the end and the BMP loader never checks), so a 126-byte
//    file decodes as a black 3 x 262150 image, slowly: a silent partial load
//    whose cost the file chooses. An uncompressed BMP must hold
//    offset + height x ceil(width x bits / 8) bytes.
//  - PSD (not among the 2.28 fixes as far as we know): a file of 4 or more
//    channels gets its "white matte removed", each colour c becoming
//    c / a + 255 (1 - 1 / a) with a = alpha / 255, computed in float and
//    converted to a byte with no range check: undefined behaviour wherever
//    the colour exceeds the alpha (a crafted or a non-premultiplied file).
//    mixq decodes PSD files of 1 to 3 channels (grey, RGB) and refuses those
//    with an alpha channel.
//
// Softimage PIC, whose loader dereferences a null pointer on any corrupt file,
// is compiled out (STBI_NO_PIC in stb_image_impl.hpp).
//
// stb_image tries the formats in a fixed order and picks the first whose
// signature matches; a JPEG starts 0xFF (0xFF...) 0xD8 and a binary PNM "P5"
// or "P6", which no format tried before them matches, so these checks see
// exactly the files stb_image decodes as JPEG or PNM.
//
// JPEG walk: the bytes are visited in the order stb_image's decoder reads them
// (stbi__decode_jpeg_header / stbi__decode_jpeg_image / stbi__process_marker):
// marker, segment length, the fields that decide how many bytes a segment
// takes, and the entropy-coded data after each start-of-scan up to the next
// marker (0xFF followed by a byte that is neither 0x00, 0xFF nor a restart
// marker). It reads 0 past the end, as stb_image does. Where stb_image would
// stop with an error, the walk stops too and reports nothing: stb_image will
// refuse the file itself, before reaching any later table. Where the walk
// cannot know how far stb_image's decoder reads (an unexpected restart marker,
// or a scan that ends before its marker), it keeps going over every later
// marker, so it may look at more tables than stb_image would, never fewer.
//
// Not a validator: everything else is left to stb_image.
#include <cstddef>
#include <cstdint>
#include <string>

namespace mixq::io::detail {

class jpeg_walk {
 public:
  jpeg_walk(const std::uint8_t* p, std::size_t n) : p_(p), n_(n) {}

  // "" when stb_image would neither build a table of more than 256 codes nor
  // decode a scan with an undefined table (or the bytes do not start like a
  // JPEG), else the reason, for a message.
  std::string problem() {
    if (get_marker() != soi) return {};
    // Header: markers up to the frame header (SOF0, SOF1 or SOF2).
    int m = get_marker();
    while (m != 0xc0 && m != 0xc1 && m != 0xc2) {
      if (!segment(m)) return problem_;
      m = get_marker();
      while (m == none) {  // padding between segments is skipped byte by byte
        if (at_end()) return {};
        m = get_marker();
      }
    }
    if (!frame_header(m)) return {};
    // Scans and the markers between them, up to the end of image.
    m = get_marker();
    while (m != eoi) {
      if (m == sos) {
        if (!scan_header()) return problem_;
        m = entropy_coded_data();
        if (m == none) return {};  // the data runs to the end of the file
        continue;
      }
      if (m == dnl) {
        if (get16() != 4) return {};
        get16();
      } else if (!segment(m)) {
        return problem_;
      }
      m = get_marker();
    }
    return {};
  }

 private:
  static constexpr int none = 0xff, soi = 0xd8, eoi = 0xd9, sos = 0xda, dnl = 0xdc;

  bool at_end() const { return i_ >= n_; }
  int get8() { return i_ < n_ ? p_[i_++] : 0; }
  int get16() {
    const int hi = get8();
    return hi << 8 | get8();
  }
  void skip(long k) {
    if (k < 0)
      i_ = n_;
    else
      i_ += static_cast<std::size_t>(k);
  }
  // A marker: 0xFF, any fill bytes 0xFF, the marker byte; `none` when the
  // next byte is not 0xFF.
  int get_marker() {
    int x = get8();
    if (x != 0xff) return none;
    while (x == 0xff) x = get8();
    return x;
  }

  // One segment that is not a frame or scan header. false: stop (stb_image
  // fails here, or problem_ is set).
  bool segment(int m) {
    if (m == 0xdd) {  // DRI
      if (get16() != 4) return false;
      get16();
      return true;
    }
    if (m == 0xdb) {  // DQT
      long len = get16() - 2;
      while (len > 0) {
        const int q = get8();
        const int precision = q >> 4, table = q & 15;
        if (precision > 1 || table > 3) return false;
        dqt_[table] = true;
        skip(precision ? 128 : 64);
        len -= precision ? 129 : 65;
      }
      return len == 0;
    }
    if (m == 0xc4) {  // DHT
      long len = get16() - 2;
      while (len > 0) {
        const int q = get8();
        if ((q >> 4) > 1 || (q & 15) > 3) return false;
        dht_[q >> 4][q & 15] = true;
        long codes = 0;
        for (int k = 0; k < 16; ++k) codes += get8();
        if (codes > 256) {
          problem_ = "corrupt JPEG: a Huffman table with " + std::to_string(codes) +
                     " codes, at most 256 are allowed";
          return false;
        }
        len -= 17;
        skip(codes);
        len -= codes;
      }
      return len == 0;
    }
    if ((m >= 0xe0 && m <= 0xef) || m == 0xfe) {  // APPn, COM
      long len = get16();
      if (len < 2) return false;
      len -= 2;
      if (m == 0xe0 && len >= 5) {  // JFIF tag
        skip(5);
        len -= 5;
      } else if (m == 0xee && len >= 12) {  // Adobe tag, then 6 more bytes when it matches
        static const char tag[6] = {'A', 'd', 'o', 'b', 'e', '\0'};
        bool ok = true;
        for (int k = 0; k < 6; ++k) ok = (get8() == static_cast<unsigned char>(tag[k])) && ok;
        len -= 6;
        if (ok) {
          skip(6);
          len -= 6;
        }
      }
      if (len != 0) skip(len);
      return true;
    }
    return false;  // stb_image: "unknown marker"
  }

  // SOF0..2: length 8 + 3 x components (id, sampling factors, quantization
  // table each).
  bool frame_header(int m) {
    const int len = get16();
    get8();   // precision
    get16();  // height
    get16();  // width
    const int comps = get8();
    if (comps != 1 && comps != 3 && comps != 4) return false;
    if (len != 8 + 3 * comps) return false;
    comps_ = comps;
    progressive_ = m == 0xc2;
    for (int k = 0; k < comps; ++k) {
      id_[k] = get8();
      get8();
      tq_[k] = get8();
      if (tq_[k] > 3) return false;
    }
    return true;
  }

  // SOS: length 6 + 2 x components in the scan; then whether every table the
  // scan needs is defined (problem_ set when not).
  bool scan_header() {
    const int len = get16();
    const int n = get8();
    if (n < 1 || n > 4 || n > comps_) return false;
    if (len != 6 + 2 * n) return false;
    int dc[4], ac[4];
    for (int k = 0; k < n; ++k) {
      const int id = get8(), q = get8();
      int which = 0;
      while (which < comps_ && id_[which] != id) ++which;
      if (which == comps_ || (q >> 4) > 3 || (q & 15) > 3) return false;
      dc[k] = q >> 4;
      ac[k] = q & 15;
    }
    const int spec_start = get8();
    get8();  // spectral end
    const int succ_high = get8() >> 4;
    for (int k = 0; k < comps_; ++k)
      if (!dqt_[tq_[k]]) {
        problem_ = "corrupt JPEG: quantization table " + std::to_string(tq_[k]) +
                   " is used but not defined";
        return false;
      }
    const bool need_dc = !progressive_ || (spec_start == 0 && succ_high == 0);
    const bool need_ac = !progressive_ || spec_start > 0;
    for (int k = 0; k < n; ++k)
      if ((need_dc && !dht_[0][dc[k]]) || (need_ac && !dht_[1][ac[k]])) {
        const bool dc_missing = need_dc && !dht_[0][dc[k]];
        problem_ = std::string("corrupt JPEG: Huffman table ") + (dc_missing ? "DC " : "AC ") +
                   std::to_string(dc_missing ? dc[k] : ac[k]) + " is used but not defined";
        return false;
      }
    return true;
  }

  // Skips entropy-coded data (stuffed 0xFF 0x00, fill bytes, restart markers)
  // and returns the marker that ends it, or `none` at the end of the bytes.
  int entropy_coded_data() {
    while (!at_end()) {
      if (get8() != 0xff) continue;
      int c = get8();
      while (c == 0xff) c = get8();
      if (c == 0x00 || (c >= 0xd0 && c <= 0xd7)) continue;
      return c;
    }
    return none;
  }

  const std::uint8_t* p_;
  std::size_t n_;
  std::size_t i_ = 0;
  int comps_ = 0;
  bool progressive_ = false;
  int id_[4] = {}, tq_[4] = {};
  bool dqt_[4] = {};
  bool dht_[2][4] = {};  // [DC/AC][table]
  std::string problem_;
};

inline std::string jpeg_problem(const std::uint8_t* p, std::size_t n) {
  return jpeg_walk(p, n).problem();
}

// A binary PNM header read the way stbi__pnm_info reads it (whitespace, '#'
// comments, digits; the byte in hand when the input ends is not used). ""
// when stb_image may read it, else the reason.
inline std::string pnm_problem(const std::uint8_t* p, std::size_t n) {
  if (n < 2 || p[0] != 'P' || (p[1] != '5' && p[1] != '6')) return {};
  std::size_t i = 2;
  auto get8 = [&]() -> char { return static_cast<char>(i < n ? p[i++] : 0); };
  auto at_end = [&] { return i >= n; };
  auto space = [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
  };
  char c = get8();
  auto skip_whitespace = [&] {
    for (;;) {
      while (!at_end() && space(c)) c = get8();
      if (at_end() || c != '#') break;
      while (!at_end() && c != '\n' && c != '\r') c = get8();
    }
  };
  // Digits, stopped once past `limit` (stb_image would go on and overflow).
  auto number = [&](long long limit) {
    long long v = 0;
    while (!at_end() && c >= '0' && c <= '9') {
      v = v * 10 + (c - '0');
      if (v > limit) return v;
      c = get8();
    }
    return v;
  };
  constexpr long long max_side = 1 << 24;
  skip_whitespace();
  const long long w = number(max_side);
  if (w > max_side) return "PNM width above 16777216";
  skip_whitespace();
  const long long h = number(max_side);
  if (h > max_side) return "PNM height above 16777216";
  skip_whitespace();
  const long long maxval = number(255);
  if (maxval > 255) return "16-bit PNM (maximum value above 255) is not supported";
  return {};
}

// A BMP header read the way stbi__bmp_parse_header reads it ("BM", the pixel
// data offset, a header of 12, 40, 56, 108 or 124 bytes, width, height,
// bits a pixel, compression). "" when the file holds every pixel row, or when
// stb_image refuses the file itself (RLE, JPEG/PNG inside, an odd bit count,
// a zero size); else the reason.
inline std::string bmp_problem(const std::uint8_t* p, std::size_t n) {
  if (n < 26 || p[0] != 'B' || p[1] != 'M') return {};
  auto u16 = [&](std::size_t at) { return std::uint32_t(p[at]) | std::uint32_t(p[at + 1]) << 8; };
  auto u32 = [&](std::size_t at) { return u16(at) | u16(at + 2) << 16; };
  const std::uint64_t offset = u32(10);
  const std::uint32_t hsz = u32(14);
  std::int64_t w = 0, h = 0;
  std::uint32_t bpp = 0, compression = 0;
  if (hsz == 12) {
    w = u16(18);
    h = u16(20);
    bpp = u16(24);
  } else if (hsz == 40 || hsz == 56 || hsz == 108 || hsz == 124) {
    if (n < 34) return {};
    w = static_cast<std::int32_t>(u32(18));
    h = static_cast<std::int32_t>(u32(22));
    bpp = u16(28);
    compression = u32(30);
  } else {
    return {};
  }
  if (h < 0) h = -h;  // top-down rows
  if (w <= 0 || h <= 0 || compression == 1 || compression == 2 || compression >= 4) return {};
  if (bpp != 1 && bpp != 4 && bpp != 8 && bpp != 16 && bpp != 24 && bpp != 32) return {};
  const std::uint64_t row = (static_cast<std::uint64_t>(w) * bpp + 7) / 8;
  // offset + h x row <= n, without overflow
  if (offset <= n && static_cast<std::uint64_t>(h) <= (n - offset) / row) return {};
  return "truncated BMP: " + std::to_string(w) + " x " + std::to_string(h) + " pixels at " +
         std::to_string(bpp) + " bits need the pixel data at byte " + std::to_string(offset) +
         " and " + std::to_string(row) + " bytes a row, the file has " + std::to_string(n) +
         " bytes";
}

// A PSD header read the way stbi__psd_load reads it ("8BPS", version 1, six
// reserved bytes, the channel count; stb_image refuses other versions and
// more than 16 channels itself). "" unless it has 4 to 16 channels.
inline std::string psd_problem(const std::uint8_t* p, std::size_t n) {
  if (n < 14 || p[0] != '8' || p[1] != 'B' || p[2] != 'P' || p[3] != 'S') return {};
  if ((p[4] << 8 | p[5]) != 1) return {};
  const int channels = p[12] << 8 | p[13];
  if (channels < 4 || channels > 16) return {};
  return "PSD with " + std::to_string(channels) +
         " channels (an alpha channel) is not supported: 1 to 3 channels expected";
}

// The first problem the checks above find in an image's bytes, or "".
inline std::string stb_input_problem(const std::uint8_t* p, std::size_t n) {
  for (auto check : {jpeg_problem, pnm_problem, bmp_problem, psd_problem}) {
    std::string why = check(p, n);
    if (!why.empty()) return why;
  }
  return {};
}

}  // namespace mixq::io::detail
