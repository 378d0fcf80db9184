/*
 * Forced include (`-include`) for building a Device OS 2.3.x user part with an arm-none-eabi-gcc
 * newer than the one Device OS 2.3.x is made for (Particle's 9.2.1, e.g. Debian 12's 12.2.1).
 * tools/electron/build-variants.sh adds it for GCC 10 and later; never needed with 9.2.1 or with
 * `particle compile` (the cloud uses Particle's own toolchain).
 *
 * Why: libstdc++ 11+ defines std::__condvar in <bits/std_mutex.h>, which <mutex> pulls in (Device
 * OS's spark_wiring_system.h includes <mutex>). Its inline members call __gthread_cond_destroy,
 * _wait, _signal, _broadcast and __GTHREAD_COND_INIT_FUNCTION, which Device OS 2.3.x's STM32
 * gthread layer (hal/src/stm32/bits/gthr-default.h) does not provide, so every C++ file of the
 * user part fails to compile.
 *
 * What: declarations only, so the headers compile. No definitions: nothing in the companion or in
 * the Device OS user-part libraries uses std::condition_variable, so nothing references them; code
 * that did would fail at link time ("undefined reference to __gthread_cond_wait") rather than run
 * a condition variable that does not work.
 */
#pragma once

#if defined(__cplusplus) && defined(__GNUC__) && __GNUC__ >= 10
#include <bits/gthr.h>
#if defined(PARTICLE_GTHREAD_INCLUDED) && !defined(__GTHREAD_COND_INIT) && \
    !defined(__GTHREAD_COND_INIT_FUNCTION)
extern "C" {
int otarig_gthread_cond_init_unavailable(__gthread_cond_t* cond);
int __gthread_cond_destroy(__gthread_cond_t* cond);
int __gthread_cond_wait(__gthread_cond_t* cond, __gthread_mutex_t* mutex);
int __gthread_cond_signal(__gthread_cond_t* cond);
int __gthread_cond_broadcast(__gthread_cond_t* cond);
}
#define __GTHREAD_COND_INIT_FUNCTION otarig_gthread_cond_init_unavailable
#endif
#endif
