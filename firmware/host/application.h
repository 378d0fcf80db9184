#pragma once
#include "Particle.h"
