/* syncline's SQLite extension, linked into a program together with SQLite
 * itself instead of loaded at run time: iOS and Android apps, WebAssembly
 * (docs/sqlite.md, "Linking it in"). Build the library with `make static`.
 */
#ifndef SYNCLINE_SQLITE_H
#define SYNCLINE_SQLITE_H

#include "sqlite3.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Every connection opened after this call gets syncline's functions
 * (sqlite3_auto_extension). Call it once, before opening the database.
 * Returns SQLITE_OK or an SQLite error code. */
int syncline_register(void);

/* The entry point itself, for one connection: what sqlite3_load_extension
 * calls in the loadable build. */
int sqlite3_syncline_init(sqlite3* db, char** error, const struct sqlite3_api_routines* api);

#ifdef __cplusplus
}
#endif

#endif
