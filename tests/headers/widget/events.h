/* Included from widget.h: a header in the directory named after it counts as its own. */
typedef void (*widget_event_fn)(void *self, int code, const char *name);
