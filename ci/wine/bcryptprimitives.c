/* ProcessPrng for Wine releases that lack bcryptprimitives.dll (Wine 8 and older): Rust's
 * standard library imports it on Windows 10 and later. Built by ci/wine-run.sh into the Wine
 * prefix the test binaries run in; it forwards to RtlGenRandom (advapi32's SystemFunction036). */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, n))
            return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}
