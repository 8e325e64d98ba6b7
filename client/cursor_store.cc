#include "client/cursor_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace walfeed {
namespace {

constexpr char kLogIdPrefix[] = "log_id=";

absl::Status Errno(const std::string& what) {
  return absl::UnavailableError(absl::StrCat(what, ": ", std::strerror(errno)));
}

}  // namespace

absl::StatusOr<SavedCursor> FileCursorStore::Load() {
  std::ifstream file(path_);
  if (!file) {
    if (errno == ENOENT) return SavedCursor{};
    return Errno(absl::StrCat("cannot read the cursor file '", path_, "'"));
  }
  std::stringstream contents;
  contents << file.rdbuf();
  SavedCursor saved;
  for (absl::string_view line : absl::StrSplit(contents.str(), '\n', absl::SkipWhitespace())) {
    line = absl::StripAsciiWhitespace(line);
    if (absl::ConsumePrefix(&line, kLogIdPrefix)) {
      saved.log_id = std::string(line);
    } else if (saved.cursor.empty()) {
      saved.cursor = std::string(line);
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("the cursor file '", path_, "' holds more than a cursor and a ",
                       kLogIdPrefix, " line; was it written by something else?"));
    }
  }
  return saved;
}

absl::Status FileCursorStore::Save(const SavedCursor& saved) {
  const std::string temporary = path_ + ".tmp";
  const int fd = open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Errno(absl::StrCat("cannot write the cursor file '", temporary, "'"));
  std::string text = saved.cursor + "\n";
  if (!saved.log_id.empty()) absl::StrAppend(&text, kLogIdPrefix, saved.log_id, "\n");
  const bool written = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  const bool synced = written && fsync(fd) == 0;
  close(fd);
  if (!synced) return Errno(absl::StrCat("cannot write the cursor file '", temporary, "'"));
  if (rename(temporary.c_str(), path_.c_str()) != 0) {
    return Errno(absl::StrCat("cannot replace the cursor file '", path_, "'"));
  }
  return absl::OkStatus();
}

}  // namespace walfeed
