// DICOM through GDCM. GDCM was chosen over DCMTK because Debian's OpenCV already brings it (no new
// package), and because Debian's GDCM decodes JPEG 2000 (OpenJPEG) and JPEG-LS (CharLS), which
// Debian's DCMTK does not. Debian builds GDCM with its assertions on, so a few inconsistent
// headers that would trip one are refused here before GDCM interprets the image.
#include "qfae/io/dicom.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>

#include "qfae/util/error.h"

#if QFAE_HAVE_GDCM
#include <gdcmDataSet.h>
#include <gdcmFileMetaInformation.h>
#include <gdcmImage.h>
#include <gdcmImageHelper.h>
#include <gdcmImageReader.h>
#include <gdcmMediaStorage.h>
#include <gdcmReader.h>
#include <gdcmTrace.h>
#endif

namespace fs = std::filesystem;

namespace qfae::io {

bool dicom_supported() { return QFAE_HAVE_GDCM != 0; }

bool is_dicom_file(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (ext == ".dcm" || ext == ".dicom") return true;
  if (!ext.empty()) return false;
  std::ifstream in(path, std::ios::binary);
  char head[132] = {};
  return in.read(head, sizeof(head)) && std::memcmp(head + 128, "DICM", 4) == 0;
}

namespace {
// RFC 4180, as util/files.h's csv_field (kept here: this file includes no other qfae headers).
std::string csv_text(const std::string& text) {
  if (text.find_first_of(",\"\n\r") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}
}  // namespace

DicomColumns dicom_columns(const std::vector<std::string>& paths) {
  DicomColumns out;
  out.rows.assign(paths.size(), "");
  bool any = false;
  std::set<std::string> patients, studies;
  for (size_t i = 0; i < paths.size(); ++i) {
    if (!is_dicom_file(paths[i])) {
      out.rows[i] = ",,,";
      continue;
    }
    any = true;
    const auto id = read_dicom_identifiers(paths[i]);
    ++out.images;
    if (!id.patient_id.empty()) patients.insert(id.patient_id);
    if (!id.study_uid.empty()) studies.insert(id.study_uid);
    out.rows[i] = "," + csv_text(id.patient_id) + "," + csv_text(id.study_uid) + "," +
                  csv_text(id.sop_uid);
  }
  if (!any) {
    out.rows.assign(paths.size(), "");
    return out;
  }
  out.header = ",patient_id,study_uid,sop_uid";
  out.patients = static_cast<int64_t>(patients.size());
  out.studies = static_cast<int64_t>(studies.size());
  return out;
}

#if !QFAE_HAVE_GDCM

DicomIdentifiers read_dicom_identifiers(const std::string&) { return {}; }

DicomImage read_dicom(const std::string& path) {
  throw UserError("image '" + path + "' is DICOM, and this qfae was built without GDCM: install "
                  "libgdcm-dev (scripts/install-deps.sh) and build again");
}

DicomHeader read_dicom_header(const std::string& path) {
  read_dicom(path);  // says why it cannot
  return {};
}

#else

namespace {

[[noreturn]] void dicom_fail(const std::string& path, const std::string& why) {
  throw UserError("DICOM '" + path + "' " + why);
}

// A text element without its padding (spaces, NULs), "" when absent.
std::string dicom_text(const gdcm::DataSet& ds, uint16_t group, uint16_t element) {
  const gdcm::Tag tag(group, element);
  if (!ds.FindDataElement(tag)) return "";
  const auto& de = ds.GetDataElement(tag);
  const auto* bytes = de.GetByteValue();
  if (!bytes || bytes->GetLength() == 0) return "";
  std::string s(bytes->GetPointer(), bytes->GetLength());
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
  size_t start = 0;
  while (start < s.size() && s[start] == ' ') ++start;
  return s.substr(start);
}

// The first value of a multi-valued decimal string ("40\400" -> 40).
std::optional<double> dicom_number(const std::string& text) {
  if (text.empty()) return std::nullopt;
  const std::string first = text.substr(0, text.find('\\'));
  char* end = nullptr;
  const double x = std::strtod(first.c_str(), &end);
  if (end == first.c_str() || !std::isfinite(x)) return std::nullopt;
  return x;
}

// The N numbers of a multi-valued decimal string ("0.5\\0.5"); nullopt when one is missing or
// not a number, or when there are more.
template <size_t N>
std::optional<std::array<double, N>> dicom_numbers(const std::string& text) {
  std::array<double, N> out{};
  size_t at = 0;
  for (size_t n = 0; n < N; ++n) {
    const size_t end = std::min(text.find('\\', at), text.size());
    const auto x = dicom_number(text.substr(at, end - at));
    if (!x || (n + 1 < N) == (end == text.size())) return std::nullopt;
    out[n] = *x;
    at = end + 1;
  }
  return out;
}

DicomGeometry dicom_geometry(const gdcm::DataSet& ds) {
  DicomGeometry g;
  g.series_uid = dicom_text(ds, 0x0020, 0x000e);
  g.series_number = dicom_text(ds, 0x0020, 0x0011);
  g.position = dicom_numbers<3>(dicom_text(ds, 0x0020, 0x0032));
  g.orientation = dicom_numbers<6>(dicom_text(ds, 0x0020, 0x0037));
  g.pixel_spacing = dicom_numbers<2>(dicom_text(ds, 0x0028, 0x0030));
  return g;
}

void quiet_gdcm_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    gdcm::Trace::SetDebug(false);
    gdcm::Trace::SetWarning(false);
    gdcm::Trace::SetError(false);
  });
}

// Checks on the bare data set, before GDCM interprets it as an image.
void check_dicom_data_set(const std::string& path, const gdcm::File& file) {
  const auto& ds = file.GetDataSet();
  gdcm::MediaStorage ms;
  ms.SetFromFile(file);
  if (ms == gdcm::MediaStorage::MediaStorageDirectoryStorage) {
    dicom_fail(path, "is a DICOMDIR (an index of other files), not an image");
  }
  if (!ds.FindDataElement(gdcm::Tag(0x7fe0, 0x0010))) {
    const char* kind = gdcm::MediaStorage::GetMSString(ms);
    dicom_fail(path, std::string("holds no pixel data (SOP class ") + (kind ? kind : "unknown") +
                         "), so it is not an image (RT plans, structured reports and waveforms "
                         "have none)");
  }
  // GDCM asserts on a frame increment pointer without a number of frames (an RT dose so written).
  if (ds.FindDataElement(gdcm::Tag(0x0028, 0x0009)) &&
      !ds.FindDataElement(gdcm::Tag(0x0028, 0x0008))) {
    dicom_fail(path, "has a Frame Increment Pointer (0028,0009) but no Number of Frames (0028,0008)");
  }
}

// Stored sample `i` of the decoded buffer as an integer or float, with its sign and bits stored.
// `halves_swapped`: this GDCM swaps the bytes of big-endian 32-bit samples as two 16-bit words,
// which leaves the words in the wrong order.
double dicom_sample(const char* buf, size_t i, const gdcm::PixelFormat& pf, bool halves_swapped) {
  const int bits = pf.GetBitsStored();
  const bool is_signed = pf.GetPixelRepresentation() == 1;
  uint64_t raw = 0;
  switch (pf.GetBitsAllocated()) {
    case 8: raw = static_cast<uint8_t>(buf[i]); break;
    case 16: { uint16_t v; std::memcpy(&v, buf + 2 * i, 2); raw = v; break; }
    case 32: {
      uint32_t v;
      std::memcpy(&v, buf + 4 * i, 4);
      if (halves_swapped) v = (v >> 16) | (v << 16);
      if (pf.GetScalarType() == gdcm::PixelFormat::FLOAT32) {
        float f;
        std::memcpy(&f, &v, 4);
        return f;
      }
      raw = v;
      break;
    }
    case 64: { double d; std::memcpy(&d, buf + 8 * i, 8); return d; }
    default: return 0;
  }
  // Only the bits stored count (old files keep overlays in the others); then the sign.
  if (bits > 0 && bits < 64) raw &= (uint64_t{1} << bits) - 1;
  if (is_signed && bits > 0 && bits < 64 && (raw >> (bits - 1)) & 1) {
    return static_cast<double>(static_cast<int64_t>(raw) - (int64_t{1} << bits));
  }
  return static_cast<double>(raw);
}

}  // namespace

DicomIdentifiers read_dicom_identifiers(const std::string& path) {
  quiet_gdcm_once();
  gdcm::Reader reader;
  reader.SetFileName(path.c_str());
  DicomIdentifiers id;
  if (!reader.ReadUpToTag(gdcm::Tag(0x7fe0, 0x0010))) return id;
  const auto& ds = reader.GetFile().GetDataSet();
  id.patient_id = dicom_text(ds, 0x0010, 0x0020);
  id.study_uid = dicom_text(ds, 0x0020, 0x000d);
  id.sop_uid = dicom_text(ds, 0x0008, 0x0018);
  return id;
}

namespace {

// The header of `path` (up to the pixel data element), checked as read_dicom checks it.
void read_checked_header(const std::string& path, gdcm::Reader& reader) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) dicom_fail(path, "does not exist or is not a file");
  quiet_gdcm_once();
  reader.SetFileName(path.c_str());
  if (!reader.ReadUpToTag(gdcm::Tag(0x7fe0, 0x0010))) {
    dicom_fail(path, "is not a readable DICOM file (not DICOM, or truncated)");
  }
  check_dicom_data_set(path, reader.GetFile());
}

// The bytes from the start of the pixel data's value to the end of the file (what an uncompressed
// file can hold of it), or -1 when that cannot be told.
int64_t uncompressed_pixel_bytes(const std::string& path) {
  gdcm::Reader reader;
  reader.SetFileName(path.c_str());
  const gdcm::Tag pixel_data(0x7fe0, 0x0010);
  // Skipping the pixel data leaves the stream at the start of its value.
  if (!reader.ReadUpToTag(pixel_data, {pixel_data})) return -1;
  const size_t at = reader.GetStreamCurrentPosition();
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec || at == static_cast<size_t>(-1) || at > size) return -1;
  return static_cast<int64_t>(size - at);
}

}  // namespace

DicomHeader read_dicom_header(const std::string& path) {
  gdcm::Reader reader;
  read_checked_header(path, reader);
  const gdcm::File& file = reader.GetFile();
  DicomHeader out;
  const auto dims = gdcm::ImageHelper::GetDimensionsValue(file);  // columns, rows, frames
  out.width = dims.size() > 0 ? dims[0] : 0;
  out.height = dims.size() > 1 ? dims[1] : 0;
  out.frames = dims.size() > 2 ? std::max<int64_t>(1, dims[2]) : 1;
  out.samples = gdcm::ImageHelper::GetPixelFormatValue(file).GetSamplesPerPixel();
  out.geometry = dicom_geometry(file.GetDataSet());
  return out;
}

DicomImage read_dicom(const std::string& path) {
  {
    // The header only: the image reader below reads the file whole.
    gdcm::Reader header;
    read_checked_header(path, header);
    const gdcm::File& file = header.GetFile();
    if (!file.GetHeader().GetDataSetTransferSyntax().IsEncapsulated()) {
      // GDCM reads a cut-off file's pixel data as if whole: it must not get that far.
      const auto dims = gdcm::ImageHelper::GetDimensionsValue(file);
      const auto pf = gdcm::ImageHelper::GetPixelFormatValue(file);
      const int64_t frame_bytes = (dims.size() > 1 ? int64_t{dims[0]} * dims[1] : 0) *
                                  pf.GetSamplesPerPixel() * pf.GetBitsAllocated() / 8;
      const int64_t held = uncompressed_pixel_bytes(path);
      if (held >= 0 && held < frame_bytes) {
        dicom_fail(path, "is truncated: its pixel data holds " + std::to_string(held) +
                             " bytes where its first frame needs " + std::to_string(frame_bytes));
      }
    }
  }
  gdcm::ImageReader reader;
  reader.SetFileName(path.c_str());
  if (!reader.Read()) dicom_fail(path, "has pixel data GDCM cannot interpret as an image");
  const gdcm::Image& image = reader.GetImage();
  const auto& ds = reader.GetFile().GetDataSet();
  const gdcm::PixelFormat pf = image.GetPixelFormat();

  DicomImage out;
  out.width = image.GetDimension(0);
  out.height = image.GetDimension(1);
  out.frames = image.GetNumberOfDimensions() > 2 ? image.GetDimension(2) : 1;
  if (out.width < 2 || out.height < 2) {
    dicom_fail(path, "is " + std::to_string(out.width) + "x" + std::to_string(out.height) +
                   " px: too small to be an image qfae can score");
  }
  const int samples = pf.GetSamplesPerPixel();
  if (samples != 1 && samples != 3) {
    dicom_fail(path, "has " + std::to_string(samples) + " samples per pixel; expected 1 or 3");
  }
  if (pf.GetBitsAllocated() == 1) dicom_fail(path, "is a 1-bit image (a segmentation?), not a picture");
  const auto ts = reader.GetFile().GetHeader().GetDataSetTransferSyntax();
  out.transfer_syntax = ts.GetString() ? ts.GetString() : "";
  std::vector<char> buffer(image.GetBufferLength());
  if (buffer.empty() || !image.GetBuffer(buffer.data())) {
    const char* name = gdcm::TransferSyntax::GetTSString(ts);
    dicom_fail(path, std::string("has pixel data that cannot be decoded (transfer syntax ") +
                   (name ? name : "unknown") + ": a compression GDCM does not take, or damaged)");
  }
  // The photometric interpretation after decoding (a codec may have turned YBR into RGB).
  const auto pi = image.GetPhotometricInterpretation();
  out.photometric = gdcm::PhotometricInterpretation::GetPIString(pi)
                        ? gdcm::PhotometricInterpretation::GetPIString(pi)
                        : "";
  while (!out.photometric.empty() && out.photometric.back() == ' ') out.photometric.pop_back();
  const std::string& p = out.photometric;
  if (p == "PALETTE COLOR") dicom_fail(path, "is palette colour, which qfae does not take");
  const bool grey = p == "MONOCHROME1" || p == "MONOCHROME2";
  const bool ybr = p == "YBR_FULL" || p == "YBR_FULL_422";
  if (grey != (samples == 1) || (!grey && !ybr && p != "RGB" && p != "YBR_RCT" && p != "YBR_ICT")) {
    dicom_fail(path, "has photometric interpretation '" + p + "' with " + std::to_string(samples) +
                   " samples per pixel, which qfae does not take");
  }
  out.inverted = p == "MONOCHROME1";
  out.bits_stored = pf.GetBitsStored();
  out.channels = samples;

  const size_t pixels = static_cast<size_t>(out.width * out.height);
  const size_t frame_bytes = pixels * samples * (pf.GetBitsAllocated() / 8);
  if (buffer.size() < frame_bytes) dicom_fail(path, "has less pixel data than its size says");
  // The modality rescale as the standard's Modality LUT stage has it (GDCM would also take an RT
  // dose's DoseGridScaling, which is not part of it).
  const double slope = dicom_number(dicom_text(ds, 0x0028, 0x1053)).value_or(1.0);
  const double intercept = dicom_number(dicom_text(ds, 0x0028, 0x1052)).value_or(0.0);
  if (samples == 3 && pf.GetBitsAllocated() > 8 && ts == gdcm::TransferSyntax::RLELossless) {
    // This GDCM interleaves the byte segments of 16- and 32-bit colour RLE wrongly.
    dicom_fail(path, "is 16- or 32-bit colour RLE, which this GDCM does not decode correctly");
  }
  const bool planar = samples == 3 && image.GetPlanarConfiguration() == 1;
  const bool halves_swapped = ts == gdcm::TransferSyntax::ExplicitVRBigEndian;
  out.values.resize(pixels * samples);
  for (int c = 0; c < samples; ++c) {
    for (size_t i = 0; i < pixels; ++i) {
      const size_t at = planar ? c * pixels + i : i * samples + c;
      out.values[c * pixels + i] = dicom_sample(buffer.data(), at, pf, halves_swapped) * slope +
                                   intercept;
    }
  }
  if (ybr) {
    // Full-range YCbCr to RGB (PS3.3 C.7.6.3.1.2), as 8-bit samples are stored.
    const double half = pf.GetBitsStored() > 0 ? std::ldexp(1.0, pf.GetBitsStored() - 1) : 128.0;
    for (size_t i = 0; i < pixels; ++i) {
      const double y = out.values[i], cb = out.values[pixels + i] - half,
                   cr = out.values[2 * pixels + i] - half;
      const double top = 2 * half - 1;  // as stored: the result is clipped to the sample range
      out.values[i] = std::clamp(y + 1.402 * cr, 0.0, top);
      out.values[pixels + i] = std::clamp(y - 0.344136 * cb - 0.714136 * cr, 0.0, top);
      out.values[2 * pixels + i] = std::clamp(y + 1.772 * cb, 0.0, top);
    }
  }
  {
    // The values the stored integers can take, through the rescale (data.dicom_window: stored).
    const int bits = std::clamp<int>(pf.GetBitsStored(), 1, 32);
    const bool is_signed = pf.GetPixelRepresentation() == 1;
    const double lo = is_signed ? -std::ldexp(1.0, bits - 1) : 0.0;
    const double hi = is_signed ? std::ldexp(1.0, bits - 1) - 1 : std::ldexp(1.0, bits) - 1;
    out.stored_lo = std::min(lo * slope + intercept, hi * slope + intercept);
    out.stored_hi = std::max(lo * slope + intercept, hi * slope + intercept);
  }
  out.window_center = dicom_number(dicom_text(ds, 0x0028, 0x1050));
  out.window_width = dicom_number(dicom_text(ds, 0x0028, 0x1051));
  if (out.window_width && *out.window_width <= 0) out.window_width.reset();
  out.modality = dicom_text(ds, 0x0008, 0x0060);
  out.patient_id = dicom_text(ds, 0x0010, 0x0020);
  out.study_uid = dicom_text(ds, 0x0020, 0x000d);
  out.sop_uid = dicom_text(ds, 0x0008, 0x0018);
  out.geometry = dicom_geometry(ds);
  return out;
}

#endif

}  // namespace qfae::io
