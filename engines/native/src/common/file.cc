// file.cc — POSIX implementations of the file helpers.
#include "file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace tuft {

bool file_exists(const std::string &path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

static te_status open_error(const std::string &path, int err) {
  return TE_FAIL(err == ENOENT ? TE_ENOTFOUND : TE_EIO, "%s: %s", path.c_str(), std::strerror(err));
}

te_status read_file(const std::string &path, std::string *out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return open_error(path, errno);
  std::string s;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return TE_FAIL(TE_EIO, "read %s: %s", path.c_str(), std::strerror(err));
    }
    if (n == 0) break;
    s.append(buf, size_t(n));
  }
  ::close(fd);
  *out = std::move(s);
  return TE_OK;
}

te_status write_file_durable(const std::string &path, const void *const *parts, const size_t *sizes,
                             int n_parts) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return open_error(path, errno);
  for (int p = 0; p < n_parts; p++) {
    const char *d = static_cast<const char *>(parts[p]);
    size_t left = sizes[p];
    while (left > 0) {
      ssize_t n = ::write(fd, d, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        int err = errno;
        ::close(fd);
        return TE_FAIL(TE_EIO, "write %s: %s", path.c_str(), std::strerror(err));
      }
      d += n;
      left -= size_t(n);
    }
  }
  if (::fsync(fd) != 0) {
    int err = errno;
    ::close(fd);
    return TE_FAIL(TE_EIO, "fsync %s: %s", path.c_str(), std::strerror(err));
  }
  if (::close(fd) != 0) return TE_FAIL(TE_EIO, "close %s: %s", path.c_str(), std::strerror(errno));
  // The new directory entry must be durable too.
  std::string dir = path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/'));
  if (dir.empty()) dir = "/";
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return TE_OK;
}

te_status write_text_durable(const std::string &path, const std::string &text) {
  const void *parts[1] = {text.data()};
  size_t sizes[1] = {text.size()};
  return write_file_durable(path, parts, sizes, 1);
}

MappedFile::~MappedFile() {
  if (data_ && size_) ::munmap(const_cast<unsigned char *>(data_), size_);
}

te_status MappedFile::open(const std::string &path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return open_error(path, errno);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return TE_FAIL(TE_EIO, "stat %s: %s", path.c_str(), std::strerror(err));
  }
  size_ = size_t(st.st_size);
  if (size_ == 0) {
    ::close(fd);
    return TE_FAIL(TE_EINVAL, "%s: empty file", path.c_str());
  }
  void *p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) {
    size_ = 0;
    return TE_FAIL(TE_EIO, "mmap %s: %s", path.c_str(), std::strerror(errno));
  }
  data_ = static_cast<const unsigned char *>(p);
  return TE_OK;
}

}  // namespace tuft
