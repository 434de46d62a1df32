/* A small library header with every kind of callback type `--header` finds. */
#ifndef WIDGET_H
#define WIDGET_H
#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>
#include "widget/events.h"

#define WIDGET_MAX 4

typedef enum widget_kind { WIDGET_BUTTON = 1, WIDGET_LABEL = WIDGET_BUTTON << 3 } widget_kind;

typedef struct widget_point { double x, y; } widget_point;

typedef union widget_value { int64_t i; double d; char tag[WIDGET_MAX]; } widget_value;

/* A typedef'd function pointer: long is 4 bytes on Win64, 8 on SysV. */
typedef long (*widget_measure_fn)(void *self, size_t len, widget_kind kind);

/* Structs and unions by value. */
typedef widget_point (*widget_move_fn)(widget_point from, float dx, float dy);
typedef void (*widget_set_fn)(widget_value value, unsigned short flags);

/* A vtable, with a nested struct of callbacks and an anonymous one. */
struct widget_vtable {
    int (*draw)(void *self, const widget_point *at);
    struct widget_hooks {
        void (*on_free)(void *self);
        widget_move_fn on_move;
    } hooks;
    struct {
        _Bool (*accept)(void *self, wchar_t key);
    } keys;
};

/* Bit-fields in a record a callback takes by value, one unnamed. */
typedef struct widget_flags { unsigned visible : 1; unsigned : 2; unsigned dirty : 1; } widget_flags;
typedef void (*widget_flags_fn)(widget_flags flags);

/* A va_list parameter; a variadic callback and long double, which not every ABI plans yet. */
typedef void (*widget_log_fn)(const char *format, va_list args);
typedef int (*widget_printf_fn)(const char *format, ...);
typedef long double (*widget_precise_fn)(long double x);

/* Layout attributes on records and members: packed and aligned(N) are expressible. */
struct __attribute__((packed)) widget_wire { char c; int i; };
typedef void (*widget_packed_fn)(struct widget_wire wire);
typedef struct widget_aligned {
    char tag;
    double value __attribute__((aligned(16)));
    short _Alignas(4) small;
} __attribute__((aligned(32))) widget_aligned;
typedef widget_aligned (*widget_aligned_fn)(int n, widget_aligned a, struct widget_wire w);

/* #pragma pack caps member alignment, in nested records and bit-fields too. */
#pragma pack(push, 2)
typedef struct widget_pragma { char c; int i; struct { char d; double x; } in; unsigned f : 3; } widget_pragma;
#pragma pack(pop)
typedef void (*widget_pragma_fn)(widget_pragma p, const char *name);

/* Function-pointer parameters, one unnamed, one returning a function pointer. */
int widget_each(void *list, int (*visit)(void *item, void *user), void *user);
void widget_sort(void *base, size_t n, int (*)(const void *, const void *));
void (*widget_handler(int signal, void (*handler)(int)))(int);

/* Anonymous records and enums named by a typedef, by value. */
typedef struct { int (*cb)(int); double weight; } widget_anon_t;
typedef enum { WIDGET_SLOW = -1, WIDGET_FAST = 1 } widget_mode;
typedef widget_mode (*widget_anon_fn)(widget_anon_t by_value, widget_mode mode);

/* A flexible array member: a record a callback takes by pointer. */
typedef struct widget_blob { size_t len; unsigned char data[]; } widget_blob;
typedef int (*widget_blob_fn)(const widget_blob *blob, void *user);

/* `#pragma pack(1)` then back to none; a record that holds one defined under another. */
#pragma pack(1)
struct widget_wire1 { char tag; long long value; short crc; };
#pragma pack()
struct widget_frame { char kind; struct widget_wire1 wire; double at; };
typedef struct widget_wire1 (*widget_frame_fn)(struct widget_frame frame, struct widget_wire1 w);

/* A transparent union passes as its first member: not expressible. */
typedef union { int *ip; long *lp; } __attribute__((transparent_union)) widget_either;
typedef void (*widget_either_fn)(widget_either either);

/* A #pragma inside a body: GCC reads the pack at the `}`, clang at the `{`. Refused. */
struct widget_torn { char c; int i;
#pragma pack(1)
};
#pragma pack()
typedef void (*widget_torn_fn)(struct widget_torn torn);

#endif
