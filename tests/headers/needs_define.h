/* Needs `--define WIDGET_API=`: the macro decorates every declaration. */
#ifndef WIDGET_API
#error "define WIDGET_API (e.g. --define WIDGET_API=)"
#endif
WIDGET_API typedef int (*widget_api_fn)(int);
