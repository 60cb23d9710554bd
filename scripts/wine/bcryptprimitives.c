/*
 * A stand-in for Windows' bcryptprimitives.dll, for running Rust programs under Wine 8.0.
 *
 * Rust's std (1.78 and later) draws its random seeds from ProcessPrng, which Windows 10+
 * exports from bcryptprimitives.dll and Wine 8.0 does not. Without it every test binary exits
 * with code 53 before main. This DLL exports ProcessPrng and fills the buffer from advapi32's
 * RtlGenRandom (SystemFunction036), which Wine implements. Test use only: it is never shipped.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
