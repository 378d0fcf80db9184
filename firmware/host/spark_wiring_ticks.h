/* Time (device-os@v2.3.1 wiring/inc/spark_wiring_ticks.h): virtual time owned by the simulator. */
#pragma once

#include <stdint.h>

typedef uint32_t system_tick_t;

system_tick_t millis(void);
unsigned long micros(void);
/** Suspends the app for ms of virtual time; the simulator runs the world meanwhile. */
void delay(unsigned long ms);
void delayMicroseconds(unsigned int us);
