/* An SQLite VFS over the browser's Origin Private File System (docs/web.md,
 * "Persistence"): the database file and its rollback journal live in OPFS,
 * read and written through FileSystemSyncAccessHandle, which only dedicated
 * Web Workers have. Handles are created asynchronously, so web/sqlite/index.mjs
 * opens them before SQLite opens the file (openPersistent); this VFS then
 * finds them by name and every call is synchronous, as SQLite needs.
 *
 * A sync access handle is exclusive: while one worker holds a database, no
 * other can open it, so the VFS needs no locks of its own (the tab that
 * holds it serves the others; see docs/web.md). A file "exists" while it is
 * longer than zero bytes: SQLite deletes a journal by truncating it here,
 * as a handle's file cannot be removed while it is open. Temporary files
 * stay in memory (SQLITE_TEMP_STORE=3). No WAL: it needs shared memory. */
#include <emscripten.h>
#include <string.h>

#include "sqlite3.h"

/* The JS side: Module.opfs (index.mjs) holds the open handles, by name and
 * id; each call returns -1 when the handle threw (a full quota, a handle
 * closed under it), so that no JS exception unwinds through SQLite. */
EM_JS(int, opfs_find, (const char* name), { return Module.opfs.find(UTF8ToString(name)); });
EM_JS(int, opfs_read, (int id, unsigned char* buf, int amount, double offset),
      { return Module.opfs.read(id, buf, amount, offset); });
EM_JS(int, opfs_write, (int id, const unsigned char* buf, int amount, double offset),
      { return Module.opfs.write(id, buf, amount, offset); });
EM_JS(int, opfs_truncate, (int id, double size), { return Module.opfs.truncate(id, size); });
EM_JS(int, opfs_flush, (int id), { return Module.opfs.flush(id); });
EM_JS(double, opfs_size, (int id), { return Module.opfs.size(id); });

typedef struct {
  sqlite3_file base;
  int id;
} OpfsFile;

#define GUARD(call, error)  \
  do {                      \
    if ((call) < 0) return (error); \
  } while (0)

static int Close(sqlite3_file* file) {
  (void)file;
  return SQLITE_OK;
}

static int Read(sqlite3_file* file, void* buf, int amount, sqlite3_int64 offset) {
  int got = opfs_read(((OpfsFile*)file)->id, buf, amount, (double)offset);
  GUARD(got, SQLITE_IOERR_READ);
  if (got < amount) {
    memset((unsigned char*)buf + got, 0, (size_t)(amount - got));
    return SQLITE_IOERR_SHORT_READ;
  }
  return SQLITE_OK;
}

static int Write(sqlite3_file* file, const void* buf, int amount, sqlite3_int64 offset) {
  int wrote = opfs_write(((OpfsFile*)file)->id, buf, amount, (double)offset);
  return wrote == amount ? SQLITE_OK : SQLITE_IOERR_WRITE;
}

static int Truncate(sqlite3_file* file, sqlite3_int64 size) {
  GUARD(opfs_truncate(((OpfsFile*)file)->id, (double)size), SQLITE_IOERR_TRUNCATE);
  return SQLITE_OK;
}

static int Sync(sqlite3_file* file, int flags) {
  (void)flags;
  GUARD(opfs_flush(((OpfsFile*)file)->id), SQLITE_IOERR_FSYNC);
  return SQLITE_OK;
}

static int FileSize(sqlite3_file* file, sqlite3_int64* size) {
  double bytes = opfs_size(((OpfsFile*)file)->id);
  GUARD(bytes, SQLITE_IOERR_FSTAT);
  *size = (sqlite3_int64)bytes;
  return SQLITE_OK;
}

static int Lock(sqlite3_file* file, int level) {
  (void)file;
  (void)level;
  return SQLITE_OK;
}

static int CheckReservedLock(sqlite3_file* file, int* reserved) {
  (void)file;
  *reserved = 0;
  return SQLITE_OK;
}

static int FileControl(sqlite3_file* file, int op, void* arg) {
  (void)file;
  (void)op;
  (void)arg;
  return SQLITE_NOTFOUND;
}

static int SectorSize(sqlite3_file* file) {
  (void)file;
  return 4096;
}

static int DeviceCharacteristics(sqlite3_file* file) {
  (void)file;
  return SQLITE_IOCAP_UNDELETABLE_WHEN_OPEN;
}

static const sqlite3_io_methods kMethods = {
    1, Close, Read, Write, Truncate, Sync, FileSize, Lock, Lock, CheckReservedLock, FileControl, SectorSize,
    DeviceCharacteristics,
};

static int Open(sqlite3_vfs* vfs, const char* name, sqlite3_file* file, int flags, int* out_flags) {
  (void)vfs;
  int id = name != NULL ? opfs_find(name) : -1;
  file->pMethods = NULL;
  if (id < 0) return SQLITE_CANTOPEN;
  ((OpfsFile*)file)->id = id;
  file->pMethods = &kMethods;
  if (out_flags != NULL) *out_flags = flags;
  return SQLITE_OK;
}

static int Delete(sqlite3_vfs* vfs, const char* name, int sync) {
  (void)vfs;
  (void)sync;
  int id = opfs_find(name);
  if (id < 0) return SQLITE_OK;
  GUARD(opfs_truncate(id, 0), SQLITE_IOERR_DELETE);
  GUARD(opfs_flush(id), SQLITE_IOERR_DELETE);
  return SQLITE_OK;
}

static int Access(sqlite3_vfs* vfs, const char* name, int flags, int* result) {
  (void)vfs;
  (void)flags;
  int id = opfs_find(name);
  *result = id >= 0 && opfs_size(id) > 0;
  return SQLITE_OK;
}

static int FullPathname(sqlite3_vfs* vfs, const char* name, int size, char* out) {
  (void)vfs;
  sqlite3_snprintf(size, out, "%s", name);
  return SQLITE_OK;
}

/* Randomness, sleep and time come from the default VFS. */
static sqlite3_vfs* Base(void) { return sqlite3_vfs_find(NULL); }
static int Randomness(sqlite3_vfs* vfs, int n, char* out) {
  (void)vfs;
  return Base()->xRandomness(Base(), n, out);
}
static int Sleep(sqlite3_vfs* vfs, int micros) {
  (void)vfs;
  return Base()->xSleep(Base(), micros);
}
static int CurrentTime(sqlite3_vfs* vfs, double* now) {
  (void)vfs;
  return Base()->xCurrentTime(Base(), now);
}
static int GetLastError(sqlite3_vfs* vfs, int n, char* out) {
  (void)vfs;
  (void)n;
  (void)out;
  return 0;
}
static int CurrentTimeInt64(sqlite3_vfs* vfs, sqlite3_int64* now) {
  (void)vfs;
  return Base()->xCurrentTimeInt64(Base(), now);
}

static sqlite3_vfs opfs_vfs = {
    2,           sizeof(OpfsFile), 1024,        NULL,         "opfs",     NULL,        Open,
    Delete,      Access,           FullPathname, NULL,         NULL,       NULL,        NULL,
    Randomness,  Sleep,            CurrentTime,  GetLastError, CurrentTimeInt64,
};

/* Called once by index.mjs when the module loads. */
EMSCRIPTEN_KEEPALIVE int syncline_opfs_register(void) { return sqlite3_vfs_register(&opfs_vfs, 0); }
